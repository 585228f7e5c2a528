// Package maglev builds Maglev consistent-hashing lookup tables (Eisenbud
// et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
// NSDI 2016, section 3.4).
//
// A table has M slots, M prime. Every backend derives from its name an
// offset = h1(name) mod M and a skip = h2(name) mod (M-1) + 1 and so a
// permutation of the slots, permutation[j] = (offset + j*skip) mod M (a
// permutation because M is prime, so every skip is coprime with M). The
// backends then take turns; on its turn a backend claims the next slot of
// its permutation that is still free, until every slot is claimed. The
// datapath picks a backend for a new flow as table[hash(flow) mod M].
//
// # Weights
//
// The paper's backends take one turn per round. Here a backend of weight w
// takes turns at the rate w/W, W the largest weight: its k-th turn (k = 0,
// 1, ...) falls in round 1 + ceil(k*W/w), and within a round backends go
// in name order. The backends of the largest weight so take a turn every
// round, and every backend with a positive weight takes one in the first
// round, so it owns at least one slot whenever M >= N. This is the
// cumulative-weight scheme of Katran's "Maglev V2" with the accumulators
// started so that the first round is full. Backends of weight 0 take no
// turns and own no slot: they are drained.
//
// # Balance
//
// Every turn claims exactly one slot, so the slots a backend owns are its
// turn count, and the turn count tracks w/W per round to within one turn.
// With equal weights every backend owns floor(M/N) or ceil(M/N) slots (the
// paper's result); with weights, backend i owns M*w_i/sum(w) slots to
// within a couple of slots. Balance is therefore exact by construction;
// what M buys is resolution (one slot is 1/M of the traffic) and lower
// disruption: the paper recommends M well above 100*N.
//
// # Disruption
//
// Removing a backend frees its slots, and the other backends' permutations
// are unchanged, so most of their slots stay theirs; a few move because
// the order in which slots are claimed shifts. Build's tests measure this
// churn for 10 to 100 backends (see maglev_test.go).
//
// # Determinism
//
// The table depends only on the set of (name, weight) pairs and M: the
// backends are sorted by name before the turns are dealt, the hashes are
// FNV-1a 64 with fixed seeds and a fixed finaliser, and nothing is random
// or read from a map. Two balancers given the same backends in any order
// build the same table, as does one balancer across restarts. The hash
// functions are part of that contract: changing them reshuffles every
// table, which breaks consistency between balancers running different
// versions.
package maglev
