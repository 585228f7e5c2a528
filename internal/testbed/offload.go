package testbed

import (
	"fmt"
	"sort"
	"strings"

	"github.com/safchain/ethtool"
)

// txChecksumPrefix is the common prefix of the kernel's TX checksum feature
// strings (tx-checksum-ipv4, tx-checksum-ip-generic, tx-checksum-ipv6,
// tx-checksum-fcoe-crc, tx-checksum-sctp). `ethtool -K tx off` is just the
// CLI's alias for all of them; veth advertises ip-generic and sctp.
const txChecksumPrefix = "tx-checksum-"

// TxChecksumFeatures reports the active TX checksum offload features of
// ifname. Like every ethtool ioctl it acts in the calling thread's network
// namespace, so call it inside Host.Do or Segment.Do.
func TxChecksumFeatures(ifname string) (map[string]bool, error) {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return nil, fmt.Errorf("ethtool socket for %s: %w", ifname, err)
	}
	defer e.Close()
	return txChecksumFeatures(e, ifname)
}

func txChecksumFeatures(e *ethtool.Ethtool, ifname string) (map[string]bool, error) {
	all, err := e.Features(ifname)
	if err != nil {
		return nil, fmt.Errorf("read features of %s: %w", ifname, err)
	}
	tx := make(map[string]bool)
	for name, on := range all {
		if strings.HasPrefix(name, txChecksumPrefix) {
			tx[name] = on
		}
	}
	return tx, nil
}

// disableTxChecksum switches off every TX checksum offload on ifname and
// verifies the result. With offload on, TCP/UDP leave the stack with
// CHECKSUM_PARTIAL; an XDP program that rewrites such a frame works on the
// raw bytes, the "finish the checksum later" metadata is lost, and the
// receiver sees a bad checksum. Turning offload off makes the stack compute
// full checksums in software before the frame reaches any XDP hook.
// Must run in ifname's namespace (see TxChecksumFeatures).
func disableTxChecksum(ifname string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool socket for %s: %w", ifname, err)
	}
	defer e.Close()

	before, err := txChecksumFeatures(e, ifname)
	if err != nil {
		return err
	}
	change := make(map[string]bool)
	for name, on := range before {
		if on {
			change[name] = false
		}
	}
	if len(change) > 0 {
		if err := e.Change(ifname, change); err != nil {
			return fmt.Errorf("disable tx checksum offload on %s: %w", ifname, err)
		}
	}

	// The kernel may silently keep a feature it cannot drop; trust only
	// what it reports back.
	after, err := txChecksumFeatures(e, ifname)
	if err != nil {
		return err
	}
	var still []string
	for name, on := range after {
		if on {
			still = append(still, name)
		}
	}
	if len(still) > 0 {
		sort.Strings(still)
		return fmt.Errorf("tx checksum offload still on for %s: %s", ifname, strings.Join(still, ", "))
	}
	return nil
}
