package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/xdplb/xdplb/internal/config"
)

// editError is what an edit returns for a service or backend that does
// not, or does already, exist: its message is the whole message, and it
// still matches ErrNotFound or ErrConflict.
type editError struct {
	msg  string
	kind error
}

func (e *editError) Error() string { return e.msg }
func (e *editError) Unwrap() error { return e.kind }

func notFound(format string, args ...any) error {
	return NotFound(fmt.Sprintf(format, args...))
}

// NotFound is an error with msg as its whole message that the API answers
// with 404 Not Found: for a Source asked about something it does not have.
func NotFound(msg string) error { return &editError{msg: msg, kind: ErrNotFound} }

func conflict(format string, args ...any) error {
	return Conflict(fmt.Sprintf(format, args...))
}

// Conflict is an error with msg as its whole message that the API answers
// with 409 Conflict: for a Source refusing a change that clashes with the
// state it is in.
func Conflict(msg string) error { return &editError{msg: msg, kind: ErrConflict} }

// immutableServiceFields explains the fields of a new service that an
// edit cannot change.
var immutableServiceFields = map[string]string{
	"vip":      "the address of a service cannot change; remove the service and add a new one",
	"port":     "the port of a service cannot change; remove the service and add a new one",
	"protocol": "the protocol of a service cannot change; remove the service and add a new one",
}

// decodeBody reads the request's JSON object into v, strictly, and
// answers 400 naming what is wrong if it cannot. hints explain unknown
// fields that are known to be tried.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, hints map[string]string) bool {
	dec := json.NewDecoder(r.Body) // bounded by guard
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		duration *durationError
		tooBig   *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, errors.New("empty request body: want a JSON object"))
	case errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, errors.New("malformed JSON: the body ends in the middle of a value"))
	case errors.As(err, &syntax):
		writeError(w, http.StatusBadRequest, fmt.Errorf("malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: ")))
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooBig.Limit))
	case errors.As(err, &duration):
		writeProblems(w, http.StatusBadRequest, "invalid request", []Problem{{Path: "persistence", Message: duration.Error()}})
	case errors.As(err, &typ):
		if typ.Field == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("the body is a JSON %s, not an object", typ.Value))
			return false
		}
		writeProblems(w, http.StatusBadRequest, "invalid request", []Problem{{Path: typ.Field, Message: typeProblem(typ)}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		msg := "unknown field"
		if h, ok := hints[name]; ok {
			msg += ": " + h
		}
		writeProblems(w, http.StatusBadRequest, fmt.Sprintf("unknown field %q", name), []Problem{{Path: name, Message: msg}})
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %s", strings.TrimPrefix(err.Error(), "json: ")))
	}
	return false
}

// typeProblem explains a JSON value of the wrong type or out of range.
func typeProblem(e *json.UnmarshalTypeError) string {
	field := e.Field
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	bounds := map[string]string{"port": "a port (1-65535)", "weight": "a weight (0-65535)"}[field]
	if n, ok := strings.CutPrefix(e.Value, "number "); ok && bounds != "" {
		return fmt.Sprintf("%s is not %s", n, bounds)
	}
	if bounds != "" {
		return fmt.Sprintf("a %s where %s is expected", e.Value, bounds)
	}
	want := e.Type.Kind().String()
	switch want {
	case "slice":
		want = "array"
	case "struct", "map":
		want = "object"
	}
	return fmt.Sprintf("%s where a %s is expected", e.Value, want)
}

// servicePaths makes the problems Validate reports about the service at
// *index (and its backend at *bindex) relative to it, as the request
// names them: "services[3].backends[1].weight" becomes
// "backends[1].weight", or "weight" for a single backend.
func servicePaths(index, bindex *int) func(string) string {
	return func(path string) string {
		if index == nil || *index < 0 {
			return path
		}
		prefix := fmt.Sprintf("services[%d]", *index)
		if bindex != nil && *bindex >= 0 {
			prefix += fmt.Sprintf(".backends[%d]", *bindex)
		}
		if path == prefix {
			return ""
		}
		if rest, ok := strings.CutPrefix(path, prefix+"."); ok {
			return rest
		}
		return path
	}
}

// writeChangeError answers for an edit or reload that failed: 400 with
// the problems of an invalid configuration (summary says what was
// invalid), 404 or 409 for requests naming what is not, or is already,
// there, 500 for the rest.
func writeChangeError(w http.ResponseWriter, err error, summary string, rel func(string) string) {
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		ps := make([]Problem, len(cerr.Problems))
		for i, p := range cerr.Problems {
			path := p.Path
			if rel != nil {
				path = rel(path)
			}
			ps[i] = Problem{Path: path, Message: p.Msg}
		}
		writeProblems(w, http.StatusBadRequest, summary, ps)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func writeProblems(w http.ResponseWriter, code int, msg string, ps []Problem) {
	writeJSON(w, code, Error{Message: msg, Problems: ps})
}

// writeRefError answers a request whose service or backend reference is
// malformed (400) or names nothing (404).
func writeRefError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeError(w, http.StatusBadRequest, err)
}
