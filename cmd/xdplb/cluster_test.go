package main

import (
	"strings"
	"testing"
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
		"received: 1200 records in 40 datagrams; gaps 0 (late 0)",
		"adopted: 1100 new, 100 refreshed, 0 replaced; 0 conflicts, 0 for unknown services; 0 forgotten\n",
		"172.19.0.5:8849  1", "done (900 records in 0s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("sync status lacks %q:\n%s", want, out)
		}
	}
	wantErr(t, socket, `role "leader": want master or backup`, "ha", "role", "leader")
	wantErr(t, socket, "ha.mode is vrrp: only in external mode", "ha", "role", "master")
}
