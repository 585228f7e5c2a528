package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/api"
	"github.com/xdplb/xdplb/internal/ident"
)

func TestHAAndSyncStatus(t *testing.T) {
	_, socket := startDaemon(t)
	out := mustRun(t, socket, "ha", "status")
	for _, want := range []string{"mode: vrrp\n", "node: 2 (priority 100)\n", "role: backup for 1m0s\n",
		"why: starting: waiting 3.6s for a master\n", "ready: yes\n", "waiting: node 1 is master with priority 200 >= 100\n",
		"PEER  PRIORITY  ROLE    READY  LAST HEARD\n1     200       master  yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("ha status lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, socket, "sync", "status")
	for _, want := range []string{"listen: 172.19.0.6:8849  role: backup  ready: yes\n",
		"received: 1200 records in 40 datagrams; gaps 0 (late 0, repaired by 0 bulk pulls)",
		"adopted: 1100 new, 100 refreshed, 0 replaced; not taken: 0 older than ours, 0 conflicts, 0 for unknown services, 0 refused by the table; 0 forgotten\n",
		"172.19.0.5:8849  1", "done (900 records in 0s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("sync status lacks %q:\n%s", want, out)
		}
	}
	wantErr(t, socket, `role "leader": want master or backup`, "ha", "role", "leader")
	wantErr(t, socket, "ha.mode is vrrp: only in external mode", "ha", "role", "master")
}

// TestConnListOrigin: in a cluster the listing says which node opened each
// connection; without one it keeps ipvsadm's columns.
func TestConnListOrigin(t *testing.T) {
	c := api.Connection{Protocol: ident.TCP, State: "ESTABLISHED", ExpiresIn: 90 * time.Second,
		Client: netip.MustParseAddrPort("172.19.0.9:40000"), VIP: netip.MustParseAddrPort("172.19.0.10:80"),
		Local: netip.MustParseAddrPort("172.19.0.100:15000"), Backend: netip.MustParseAddrPort("172.19.0.2:80")}
	var plain, clustered strings.Builder
	printConns(&plain, []api.Connection{c})
	c.Origin = 2
	printConns(&clustered, []api.Connection{c})
	if strings.Contains(plain.String(), "ORIGIN") {
		t.Errorf("listing without a cluster has an origin column:\n%s", plain.String())
	}
	want := "PRO  EXPIRE  STATE        CLIENT            VIRTUAL         LOCAL               BACKEND        ORIGIN\n" +
		"TCP  01:30   ESTABLISHED  172.19.0.9:40000  172.19.0.10:80  172.19.0.100:15000  172.19.0.2:80  node 2\n"
	if clustered.String() != want {
		t.Errorf("listing in a cluster:\n%s\nwant:\n%s", clustered.String(), want)
	}
}
