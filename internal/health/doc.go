// Package health checks the real servers (backends) behind the balancer,
// keepalived style, and tells the control plane when one goes down or
// comes back.
//
// A Spec describes a check: its Kind (tcp, http, https, udp, exec), its
// timing (Interval, Timeout) and its hysteresis (Rise, Fall). A Target is
// one backend of one service, at an IP address and port, with the Spec to
// check it by. A Monitor runs the checks of a set of targets, given and
// changed with SetTargets, keeps a rise/fall state machine per target,
// and reports every change through Options.OnChange and the log.
//
// # Defaults
//
// Interval 1s, timeout 1s, fall 2, rise 2. The worst case time to take a
// dead backend out of rotation is
//
//	fall*interval + timeout = 3s
//
// (it dies right after a passed probe; the next two probes, one interval
// apart, each hang for the whole timeout). A backend whose host answers
// with a reset or an ICMP error fails each probe at once and is out in
// about fall*interval = 2s. Fall 2 tolerates one lost packet; rise 2
// keeps a flapping backend out until it answers twice in a row.
//
// Targets start up (Spec.Initial "up"): a daemon restart or a config
// reload must not empty every pool for rise*interval while the first
// probes run, and a backend that is really dead is still out within the
// detection time above. Initial "down" suits backends that should take
// traffic only once proven healthy.
//
// # Scheduling
//
// One scheduler goroutine keeps the targets in a heap by next probe time
// and feeds due probes to a bounded pool of workers (Options.MaxConcurrent,
// default 64), so the number of sockets and processes used at once does
// not grow with the number of targets. First probes are spread at random
// over one interval. All sockets are made through Options.DialContext and
// Options.ListenPacket, so the caller controls the network (namespace,
// source address) and tests can observe it.
package health
