package main

import (
	"bytes"
	"testing"
)

func TestPrintTOA(t *testing.T) {
	var b bytes.Buffer
	printTOA(&b, map[string]uint64{"inserted": 12, "no_room": 0, "forged": 1})
	if got, want := b.String(), "\nclient address option (toa): forged 1, inserted 12\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	b.Reset()
	printTOA(&b, map[string]uint64{"inserted": 0})
	if b.Len() != 0 {
		t.Errorf("nothing moved, but printed %q", b.String())
	}
}
