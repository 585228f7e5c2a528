package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config sets what a harness run measures and how much.
type Config struct {
	Short bool `json:"short"`

	// Datapath cost and scale: runs (the median is reported) of Packets
	// frames each, SYNs for the new-connection path.
	Runs    int `json:"runs"`
	Packets int `json:"packets"`
	SYNs    int `json:"syns"`
	// Live-frames packet rate.
	LivePackets int    `json:"live_packets"`
	LiveRuns    int    `json:"live_runs"`
	Batch       uint32 `json:"batch"`
	// Scale: connections planted in the table.
	ScaleEntries int `json:"scale_entries"`
	// CPU the datapath stages run on.
	CPU int `json:"cpu"`

	// End to end: runs per cell, durations, concurrency.
	E2ERuns        int           `json:"e2e_runs"`
	Warmup         time.Duration `json:"warmup"`
	HTTPDuration   time.Duration `json:"http_duration"`
	StreamDuration time.Duration `json:"stream_duration"`
	Workers        int           `json:"workers"`
	Streams        int           `json:"streams"`

	// Install missing peers (haproxy, nft) with apt-get; without it a
	// missing peer is reported as skipped.
	Install bool `json:"install"`
	// XDPLB is the xdplb executable; empty: built from this module.
	XDPLB string `json:"-"`
	// OutDir receives results.md and results.json; empty: not written.
	OutDir string `json:"-"`
	// Log receives progress lines; nil: discarded.
	Log io.Writer `json:"-"`
}

// FullConfig is the real benchmark (about 10 minutes on 2 cores).
func FullConfig() Config {
	return Config{
		Runs: 5, Packets: 200_000, SYNs: 100_000,
		LivePackets: 10_000_000, LiveRuns: 3, Batch: 64,
		ScaleEntries: 1_000_000,
		CPU:          runtime.NumCPU() - 1,
		E2ERuns:      3, Warmup: time.Second, HTTPDuration: 5 * time.Second, StreamDuration: 5 * time.Second,
		Workers: 16, Streams: 1,
		Install: true,
	}
}

// ShortConfig runs every stage with tiny counts, in seconds: it proves
// the harness works, not how fast anything is.
func ShortConfig() Config {
	return Config{
		Short: true,
		Runs:  5, Packets: 2000, SYNs: 2000,
		LivePackets: 100_000, LiveRuns: 1, Batch: 64,
		ScaleEntries: 20_000,
		CPU:          runtime.NumCPU() - 1,
		E2ERuns:      1, HTTPDuration: 300 * time.Millisecond, StreamDuration: 300 * time.Millisecond,
		Workers: 4, Streams: 1,
	}
}

type logf func(format string, args ...any)

// run is one harness run in progress.
type run struct {
	cfg   Config
	log   logf
	self  string            // this executable, the load generator
	xdplb string            // the balancer's executable
	tools map[string]string // peer program -> path ("" if missing)
	res   *Results
}

func (r *run) fail(err error) {
	r.log("FAILED: %v", err)
	r.res.Errors = append(r.res.Errors, err.Error())
}

// Run runs every stage, prints progress to cfg.Log, writes results.md and
// results.json to cfg.OutDir and returns the results. A stage that fails
// is recorded and the others still run; the error lists every failure.
// The caller must call MaybeHelper at the start of its main (or
// TestMain): the load generator is this executable started again.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	start := time.Now()
	out := cfg.Log
	if out == nil {
		out = io.Discard
	}
	r := &run{cfg: cfg, tools: map[string]string{}}
	r.log = func(format string, args ...any) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	mode := "full"
	if cfg.Short {
		mode = "short"
	}
	r.res = &Results{Date: start.UTC().Format("2006-01-02 15:04 UTC"), Mode: mode, Machine: machine(), Config: cfg}
	if os.Geteuid() != 0 {
		return nil, errors.New("the benchmark needs root (BPF, network namespaces)")
	}
	// A reader of the progress that goes away (| head) must not kill the
	// run before it has torn down what it built: with SIGPIPE caught,
	// writes to the broken pipe just fail.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	var err error
	if r.self, err = os.Executable(); err != nil {
		return nil, err
	}
	r.log("machine: %d CPUs (%s), kernel %s, load average %s", r.res.Machine.CPUs, r.res.Machine.CPU, r.res.Machine.Kernel, r.res.Machine.LoadAvg)

	r.log("[1/5] datapath cost (BPF_PROG_TEST_RUN, median of %d runs)", cfg.Runs)
	if r.res.Datapath, err = runDatapathCost(cfg, r.log); err != nil {
		r.fail(fmt.Errorf("datapath cost: %w", err))
	}
	r.log("[2/5] packet rate (live frames, one core)")
	if r.res.Live, err = runPacketRate(cfg, r.log); err != nil {
		r.fail(fmt.Errorf("packet rate: %w", err))
	}
	r.log("[3/5] scale (%d connections in conntrack)", cfg.ScaleEntries)
	if r.res.Scale, err = runScale(cfg, r.log); err != nil {
		r.fail(fmt.Errorf("scale: %w", err))
	}
	r.log("[4/5] end to end (reference topology)")
	if err := r.prepareE2E(ctx); err != nil {
		r.fail(fmt.Errorf("end to end: %w", err))
	} else {
		r.res.E2E = r.runE2E(ctx)
	}
	if r.cfg.XDPLB == "" && r.xdplb != "" {
		os.RemoveAll(filepath.Dir(r.xdplb))
	}

	r.res.evaluate()
	r.res.Seconds = time.Since(start).Seconds()
	r.log("[5/5] results")
	for _, t := range r.res.Targets {
		r.log("  %-4s %s: %s (goal %s)", t.Result, t.Name, t.Measured, t.Goal)
	}
	if cfg.OutDir != "" {
		if err := r.res.write(cfg.OutDir); err != nil {
			r.fail(err)
		} else {
			r.log("wrote %s and %s", filepath.Join(cfg.OutDir, "results.md"), filepath.Join(cfg.OutDir, "results.json"))
		}
	}
	r.log("done in %s", time.Since(start).Round(time.Second))
	if len(r.res.Errors) > 0 {
		return r.res, errors.New(strings.Join(r.res.Errors, "\n"))
	}
	return r.res, nil
}

func (res *Results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(res.Markdown()), 0o644)
}

// prepareE2E finds (or installs) the peers and builds xdplb if needed.
func (r *run) prepareE2E(ctx context.Context) error {
	peers := []struct{ bin, pkg string }{{"haproxy", "haproxy"}, {"nft", "nftables"}}
	var missing []string
	for _, p := range peers {
		if path, err := exec.LookPath(p.bin); err == nil {
			r.tools[p.bin] = path
		} else {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) > 0 && r.cfg.Install {
		r.log("installing with apt-get: %s", strings.Join(missing, " "))
		if err := aptInstall(ctx, missing, r.cfg.Log); err != nil {
			return fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
		}
		for _, p := range peers {
			if path, err := exec.LookPath(p.bin); err == nil {
				r.tools[p.bin] = path
			}
		}
	}
	for _, p := range peers {
		if r.tools[p.bin] == "" {
			r.log("%s is not installed: its setup is skipped", p.bin)
		}
	}
	r.xdplb = r.cfg.XDPLB
	if r.xdplb == "" {
		dir, err := os.MkdirTemp("", "xdplb-bench-bin-")
		if err != nil {
			return err
		}
		r.xdplb = filepath.Join(dir, "xdplb")
		r.log("building xdplb")
		build := exec.CommandContext(ctx, "go", "build", "-o", r.xdplb, "github.com/xdplb/xdplb/cmd/xdplb")
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			r.xdplb = ""
			return fmt.Errorf("build xdplb: %w: %s", err, out)
		}
	}
	return nil
}

func aptInstall(ctx context.Context, pkgs []string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"update", "-qq"},
		append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	return nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
