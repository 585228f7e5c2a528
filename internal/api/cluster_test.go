package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestSetRole: a role is set in external mode and refused, with the
// reason, elsewhere; a role that is none of master and backup is a 400
// naming the field.
func TestSetRole(t *testing.T) {
	src := newFakeSource(t)
	c := serve(t, src)
	var remote *RemoteError
	if _, err := c.SetRole(t.Context(), "master"); !errors.As(err, &remote) || remote.Status != http.StatusConflict ||
		!strings.Contains(err.Error(), "ha.mode is none") {
		t.Errorf("set role without HA: %v, want 409 saying why", err)
	}
	src.role = "backup"
	st, err := c.SetRole(t.Context(), "master")
	if err != nil || st.Role != "master" {
		t.Errorf("set role in external mode: %+v, %v", st, err)
	}
	if _, err := c.SetRole(t.Context(), "leader"); !errors.As(err, &remote) || remote.Status != http.StatusBadRequest ||
		len(remote.Problems) != 1 || remote.Problems[0].Path != "role" ||
		remote.Problems[0].Message != `"leader" is not a role (accepted: master, backup)` {
		t.Errorf("set role leader: %v (%+v), want 400 naming role", err, remote)
	}
	got, err := c.Cluster(t.Context())
	if err != nil || got.Role != "master" || got.Mode != "external" {
		t.Errorf("cluster status %+v, %v", got, err)
	}
}
