package connsync

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

func TestNewReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Key:    []byte("short"),
		Listen: netip.MustParseAddrPort("0.0.0.0:7000"),
		Peers: []netip.AddrPort{
			netip.MustParseAddrPort("10.0.0.2:0"),
			netip.MustParseAddrPort("[2001:db8::2]:7000"),
			netip.MustParseAddrPort("10.0.0.3:7000"),
			netip.MustParseAddrPort("10.0.0.3:7000"),
		},
		BatchInterval: -1,
	}
	_, err := New(cfg, &recorder{})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{
		"NodeID: 0",
		"Key: 5 bytes, need at least 16",
		"Listen: 0.0.0.0:7000 is unspecified",
		"Peers[0]: 10.0.0.2:0 is not a peer address",
		"Peers[1]: [2001:db8::2]:7000 is not of the family",
		"Peers[3]: 10.0.0.3:7000 is listed twice",
		"BatchInterval: -1ns is negative",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Peers[2]") {
		t.Errorf("error blames a good peer:\n%v", err)
	}
}

func TestNewNeedsHandler(t *testing.T) {
	if _, err := New(testConfig(1), nil); err == nil {
		t.Error("New accepted a nil Handler")
	}
}

func TestNewAddressInUse(t *testing.T) {
	a := start(t, testConfig(1), &recorder{})
	cfg := testConfig(2)
	cfg.Listen = a.Addr()
	_, err := New(cfg, &recorder{})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("New on a taken address: %v, want address in use", err)
	}
}
