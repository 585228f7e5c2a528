package api

import "github.com/xdplb/xdplb/internal/datapath"

// Status says whether the daemon is serving and how it is attached.
type Status struct {
	Ready      bool         `json:"ready"`
	Interfaces []Attachment `json:"interfaces"`
	Services   int          `json:"services"`
}

// Attachment is the XDP program on one interface.
type Attachment struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
}

// Stats are the datapath's counters.
type Stats struct {
	// Reasons counts why packets left the program, by reason name.
	Reasons  map[string]uint64 `json:"reasons"`
	Services []ServiceStats    `json:"services"`
}

// ServiceStats is one service's traffic and its backends'.
type ServiceStats struct {
	Name      string           `json:"name"`
	Address   string           `json:"address"` // VIP:port
	Protocol  string           `json:"protocol"`
	Scheduler string           `json:"scheduler"`
	Traffic   datapath.Traffic `json:"traffic"`
	Backends  []BackendStats   `json:"backends"`
}

// BackendStats is one backend's traffic within a service.
type BackendStats struct {
	Address string           `json:"address"` // IP:port
	Weight  uint32           `json:"weight"`
	Traffic datapath.Traffic `json:"traffic"`
}

// Error is the body of every failed request.
type Error struct {
	Message string `json:"error"`
	// Problems lists what is wrong with a request or the configuration
	// it would make, each located by a path such as "port" or
	// "backends[1].weight".
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one thing wrong with a request or configuration.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}
