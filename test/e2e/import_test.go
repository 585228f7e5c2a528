package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/importer"
)

// keepalivedReference is the reference scenario as a keepalived user
// would have written it for LVS.
const keepalivedReference = `! the reference scenario, for LVS
virtual_server 172.19.0.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP

    real_server 172.19.0.2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 172.19.0.3 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestImportedKeepalivedServes: a keepalived.conf imported with the
// importer, its interfaces and local addresses filled in, runs the
// reference scenario: the answers alternate.
func TestImportedKeepalivedServes(t *testing.T) {
	e := newEnv(t, "native")
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedReference), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := importer.Keepalived(conf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unmapped) > 0 {
		t.Fatalf("not imported: %v", res.Unmapped)
	}
	e.start(t, func(dir string) string {
		// What the operator fills in, from the testbed's own setup.
		cfg, err := config.Parse([]byte(demo.Setup{Mode: e.mode, Dir: dir}.YAML()))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Services = res.Config.Services
		data, err := config.Render(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	})
	client := e.ref.Client.HTTPClient(false)
	for i := range 4 {
		body, err := httpGet(t.Context(), client, webURL)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if want := fmt.Sprintf("rs-%d", i%2+1); body != want {
			t.Errorf("request %d answered by %s, want %s", i+1, body, want)
		}
	}
}
