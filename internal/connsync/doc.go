// Package connsync is the channel between the balancer nodes of an xdplb
// cluster: each node tells its peers about the connections it opens,
// changes and ends, so that a backup can take over a VIP without
// breaking them, and the nodes' election heartbeats travel with them.
//
// The package owns the channel only: the wire format (see wire.go), its
// authentication, the UDP transport with batching and loss detection, and
// the TCP bulk dump a node pulls from its peers when it starts. Reading
// connections from the datapath, adopting them into it, and the election
// are the daemon's, through Handler and a Node's methods.
//
// # Delivery
//
// Deltas are best effort. Send never blocks; a record waits at most
// BatchInterval to share a datagram with others, and is dropped (and
// counted) if the send queue is full. A datagram lost on the way is
// detected by its sequence number and counted as a gap, not resent: the
// daemon's periodic refresh of its connections repairs what was lost,
// and a node that starts pulls the whole table with PullAll.
//
// # Security
//
// Every datagram and frame carries an HMAC-SHA256 (truncated to 16
// bytes) under a key the cluster shares, and is believed only once it is
// checked. Datagrams are accepted only from configured peers' addresses,
// of this cluster id, and only once: a sliding window per sender drops
// replays, and the sender's epoch (its start time) drops datagrams
// recorded before it restarted. A bulk dump answers a random nonce, so an
// old one cannot be played back.
//
// The channel is not encrypted: connection addresses travel in the
// clear. Run it over a private link. Two limits of the replay defence: a
// node that has just started cannot tell a peer's datagrams from
// recordings of them made earlier in the peer's current epoch, so those
// can be played to it, in order, until the peer's own next datagram moves
// the window on (what they say is stale and expires like any idle
// connection); and a node that restarts within an eighth of a second of
// its previous start reuses its epoch, so its peers drop its datagrams as
// replays until its seq passes where it was. A recorded bulk request can
// be replayed, from a peer's address, to make a node walk its table and
// send it again: work, but nothing the deltas do not show anyway.
package connsync
