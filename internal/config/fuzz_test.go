package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input makes Parse panic, and whatever it accepts passes
// Validate again (defaults and validation agree).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"reference.yaml", "ha.yaml", "syn_protection.yaml", "dsr.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(healthBase + "    health_check: {kind: http, expect_status: [\"200-299\"]}\n"))
	f.Add([]byte("interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 1-2}\n"))
	f.Add([]byte("services: [{vip: 1.2.3.4, port: 70000}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
	})
}
