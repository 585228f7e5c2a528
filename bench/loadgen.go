package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// HelperEnv, set to "1", makes a program that calls MaybeHelper act as the
// harness's load generator instead of itself. The harness starts its own
// executable that way inside the client's namespace, so the generator is a
// separate process living entirely in that namespace (dials are plain
// dials, and its work is not mixed with the backends' in one runtime).
const HelperEnv = "XDPLB_BENCH_HELPER"

// MaybeHelper runs the load generator and exits if this process was
// started as one; otherwise it returns at once. Programs that call Run
// (the harness command, the smoke test's TestMain) call it first thing.
func MaybeHelper() {
	if os.Getenv(HelperEnv) != "1" {
		return
	}
	os.Exit(helperMain(os.Args[1:], os.Stdout, os.Stderr))
}

// httpResult is what one HTTP load run reports.
type httpResult struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	FirstError string  `json:"first_error,omitempty"`
}

// streamResult is what one TCP throughput run reports.
type streamResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Gbps    float64 `json:"gbps"`
}

func helperMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "helper: want http or stream")
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "server address:port")
	d := fs.Duration("d", 5*time.Second, "how long to run")
	workers := fs.Int("workers", 16, "concurrent connections")
	keepAlive := fs.Bool("keepalive", true, "reuse connections (false: one connection per request)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var res any
	switch args[0] {
	case "http":
		res = loadHTTP(*addr, *workers, *d, *keepAlive)
	case "stream":
		r, err := stream(*addr, *workers, *d)
		if err != nil {
			fmt.Fprintln(stderr, "helper:", err)
			return 1
		}
		res = r
	default:
		fmt.Fprintf(stderr, "helper: unknown mode %q\n", args[0])
		return 2
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// loadHTTP runs workers closed loops of HTTP/1.1 GETs against addr for d:
// each sends a request, reads the whole answer, and sends the next. With
// keepAlive each worker keeps one connection; without, every request
// dials a new connection (in the latency), asks the server to close it,
// and waits for the server's FIN before closing its side, so the
// generator itself never holds TIME_WAIT sockets or runs out of ports.
func loadHTTP(addr string, workers int, d time.Duration, keepAlive bool) httpResult {
	req := "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: xdplb-bench\r\n"
	if !keepAlive {
		req += "Connection: close\r\n"
	}
	reqb := []byte(req + "\r\n")
	var (
		mu       sync.Mutex
		res      httpResult
		lats     []int64
		firstErr error
	)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var (
				c    net.Conn
				br   = bufio.NewReaderSize(nil, 4096)
				lat  = make([]int64, 0, 1<<14)
				errs int64
				ferr error
			)
			fail := func(err error) {
				errs++
				if ferr == nil {
					ferr = err
				}
				if c != nil {
					c.Close()
					c = nil
				}
			}
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if c == nil {
					var err error
					c, err = net.DialTimeout("tcp", addr, 3*time.Second)
					if err != nil {
						c = nil
						fail(err)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br.Reset(c)
				}
				c.SetDeadline(t0.Add(3 * time.Second))
				if _, err := c.Write(reqb); err != nil {
					fail(err)
					continue
				}
				if err := readResponse(br); err != nil {
					fail(err)
					continue
				}
				lat = append(lat, time.Since(t0).Nanoseconds())
				if !keepAlive {
					if _, err := io.Copy(io.Discard, br); err != nil {
						fail(err)
						continue
					}
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, lat...)
			res.Errors += errs
			if firstErr == nil {
				firstErr = ferr
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Requests = int64(len(lats))
	res.RPS = float64(res.Requests) / res.Seconds
	if len(lats) > 0 {
		slices.Sort(lats)
		res.P50us = float64(lats[len(lats)*50/100]) / 1e3
		res.P99us = float64(lats[len(lats)*99/100]) / 1e3
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	return res
}

// readResponse reads one HTTP/1.1 response with a Content-Length body.
func readResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("unexpected status line %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 15 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil {
				return fmt.Errorf("bad Content-Length %q", line)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = br.Discard(length)
	return err
}

// stream sends as fast as it can on streams connections to addr for d,
// then half-closes and waits for the server to close: when that happens
// the server has read every byte, so bytes / time is what it received.
func stream(addr string, streams int, d time.Duration) (streamResult, error) {
	start := time.Now()
	deadline := start.Add(d)
	var (
		mu    sync.Mutex
		total int64
		end   time.Time
		ferr  error
	)
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			n, err := func() (int64, error) {
				c, err := net.DialTimeout("tcp", addr, 3*time.Second)
				if err != nil {
					return 0, err
				}
				defer c.Close()
				buf := make([]byte, 256<<10)
				var n int64
				c.SetWriteDeadline(deadline.Add(5 * time.Second))
				for time.Now().Before(deadline) {
					w, err := c.Write(buf)
					n += int64(w)
					if err != nil {
						return n, err
					}
				}
				if err := c.(*net.TCPConn).CloseWrite(); err != nil {
					return n, err
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.Copy(io.Discard, c); err != nil {
					return n, fmt.Errorf("waiting for the receiver to finish: %w", err)
				}
				return n, nil
			}()
			mu.Lock()
			defer mu.Unlock()
			total += n
			if now := time.Now(); now.After(end) {
				end = now
			}
			if err != nil && ferr == nil {
				ferr = err
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		return streamResult{}, ferr
	}
	secs := end.Sub(start).Seconds()
	return streamResult{Bytes: total, Seconds: secs, Gbps: float64(total) * 8 / secs / 1e9}, nil
}

// serveSink accepts connections on l and reads each to EOF, then closes
// it. It returns when l is closed.
func serveSink(l net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			buf := make([]byte, 256<<10)
			c.SetReadDeadline(time.Now().Add(time.Minute))
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		})
	}
}
