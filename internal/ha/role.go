package ha

import "strconv"

// Role is a node's state in the election. The values are the ones the sync
// channel carries on the wire, so they must not be renumbered.
type Role uint8

const (
	// RoleInit is a node that has not joined the election yet.
	RoleInit Role = 0
	// RoleBackup is a node that stands by; it owns no addresses.
	RoleBackup Role = 1
	// RoleMaster is the node that owns the VIPs and floating addresses.
	RoleMaster Role = 2
	// RoleFault is a node that cannot serve (the daemon decides when); it
	// never wins an election.
	RoleFault Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleInit:
		return "init"
	case RoleBackup:
		return "backup"
	case RoleMaster:
		return "master"
	case RoleFault:
		return "fault"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}
