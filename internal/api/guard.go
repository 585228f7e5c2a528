package api

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// maxBody bounds a request body. The largest request, a service edit
// with the most backends a service may have (4,096), takes about 400 KB
// even indented.
const maxBody = 1 << 20

// guard wraps the API's routes with what every request gets before them:
// a request no route takes is answered in JSON, 404 for an unknown path
// and 405 (with Allow) for a known path with another method; a body must
// be JSON (415 otherwise) and at most maxBody bytes (413, from
// decodeBody).
func guard(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := mux.Handler(r); pattern == "" {
			noRoute(w, r, h)
			return
		}
		if hasBody(r) {
			if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
				writeError(w, http.StatusUnsupportedMediaType, err)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r)
	})
}

// noRoute answers a request that no route takes as the mux would, 404,
// or 405 with an Allow header, but with a JSON body like every other
// error.
func noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	var ans muxAnswer
	h.ServeHTTP(&ans, r)
	if ans.code == http.StatusMethodNotAllowed {
		allow := ans.Header().Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
}

// muxAnswer keeps the status and headers of the mux's own answer, and
// drops its text body.
type muxAnswer struct {
	header http.Header
	code   int
}

func (a *muxAnswer) Header() http.Header {
	if a.header == nil {
		a.header = http.Header{}
	}
	return a.header
}

func (a *muxAnswer) Write(b []byte) (int, error) { return len(b), nil }
func (a *muxAnswer) WriteHeader(code int)        { a.code = code }

// hasBody reports whether a request has, or may have, a body: a length
// that is not zero, or none known (chunked).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// checkContentType accepts application/json, with a UTF-8 charset if
// one is given (JSON is UTF-8).
func checkContentType(ct string) error {
	const want = "send the body as application/json"
	if ct == "" {
		return fmt.Errorf("the request has a body but no Content-Type: %s", want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("Content-Type %q is not supported: %s", ct, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("Content-Type %q is not supported: JSON is UTF-8", ct)
	}
	return nil
}
