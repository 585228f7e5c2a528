package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/testbed"
)

// Options of a demo run.
type Options struct {
	Mode     string    // native, generic or auto
	Requests int       // HTTP requests to send through the VIP
	Binary   string    // the xdplb executable to run as the balancer
	Out      io.Writer // answers and counters
	Logs     io.Writer // the balancer's own log
	// PrintStats writes the balancer's counters for a person to read.
	PrintStats func(io.Writer, api.Stats)
	// Keep leaves the scenario up after the requests, until ctx ends
	// (Ctrl-C), saying how to look around.
	Keep bool
}

// Run builds the reference scenario, sends the requests, prints answers
// and counters, and tears everything down, whatever happens. It fails if
// the answers do not alternate rs-1, rs-2, rs-1, ...
func Run(ctx context.Context, o Options) (err error) {
	fmt.Fprintf(o.Out, "building the reference scenario: client %s, balancer %s (VIP %s), rs1 %s, rs2 %s\n",
		testbed.ReferenceClient, testbed.ReferenceLB, testbed.ReferenceVIP, testbed.ReferenceRS1, testbed.ReferenceRS2)
	ref, err := testbed.NewReference()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ref.Close()) }()
	if err := ref.ServeBackends(":80", ""); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "xdplb-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(o.Out, "starting the balancer (xdp_mode %s)\n", o.Mode)
	bal, err := StartBalancer(ctx, ref.LB, o.Binary, dir, Setup{Mode: o.Mode, Dir: dir, Services: WebService}.YAML(), o.Logs)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, bal.Stop()) }()
	if st, err := bal.API.Status(ctx); err == nil {
		for _, a := range st.Interfaces {
			fmt.Fprintf(o.Out, "XDP program attached to %s in %s mode\n", a.Name, a.Mode)
		}
	}

	answers, err := sendRequests(ctx, ref.Client.HTTPClient(false), o.Requests, o.Out)
	if err != nil {
		return err
	}
	stats, err := bal.API.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.Out)
	o.PrintStats(o.Out, stats)
	if err := checkAlternation(answers, o.Out); err != nil || !o.Keep {
		return err
	}
	printLookAround(o.Out, ref, bal)
	<-ctx.Done()
	fmt.Fprintln(o.Out, "removing the scenario")
	return nil
}

// printLookAround says how to use the scenario kept up, and how it goes.
func printLookAround(w io.Writer, ref *testbed.Reference, bal *Balancer) {
	fmt.Fprintf(w, "\nthe scenario stays up until Ctrl-C, which removes all of it. Look around:\n")
	fmt.Fprintf(w, "  ip netns exec %s curl http://%s/\n", ref.Client.NSName, testbed.ReferenceVIP)
	fmt.Fprintf(w, "  %s --socket %s list\n", os.Args[0], bal.Socket)
	fmt.Fprintf(w, "  ip netns exec %s ip -d link show eth0   # the XDP program\n", ref.LB.NSName)
	fmt.Fprintf(w, "  namespaces: %s %s %s %s\n", ref.Client.NSName, ref.LB.NSName, ref.RS1.NSName, ref.RS2.NSName)
}

func sendRequests(ctx context.Context, client *http.Client, n int, out io.Writer) ([]string, error) {
	url := fmt.Sprintf("http://%s:80/", testbed.ReferenceVIP)
	fmt.Fprintf(out, "\nclient %s: curl %s  (x%d, a new connection each)\n", testbed.ReferenceClient, url, n)
	var answers []string
	for i := 1; i <= n; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return answers, fmt.Errorf("request %d: %w", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return answers, fmt.Errorf("request %d: %w", i, err)
		}
		answer := strings.TrimSpace(string(body))
		fmt.Fprintf(out, "  request %d: %s\n", i, answer)
		answers = append(answers, answer)
	}
	return answers, nil
}

func checkAlternation(answers []string, out io.Writer) error {
	for i, a := range answers {
		want := fmt.Sprintf("rs-%d", i%2+1)
		if a != want {
			return fmt.Errorf("answer %d was %q, want %q: round robin did not alternate", i+1, a, want)
		}
	}
	fmt.Fprintln(out, "\nanswers alternate between rs-1 and rs-2: round robin works")
	return nil
}
