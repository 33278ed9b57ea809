package rtmconn

import (
	"slices"
	"sync"
)

// Registry finds a surface's logged-in clients by whom they act for (an
// agent id, a customer id), so that pushes addressed to a person rather
// than to a conversation (routing_status_set, customer_updated) reach
// every session of that person on this node. The zero value is ready.
//
// A person's clients are a slice, not a set: nearly everyone has one
// connection (a visitor's widget, an agent's app), and a map per person
// cost each held connection about 200 bytes where a slice costs 8.
type Registry[K comparable, C comparable] struct {
	mu sync.Mutex
	by map[K][]C
}

// Add makes c reachable under k; adding it again changes nothing.
func (r *Registry[K, C]) Add(k K, c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = make(map[K][]C)
	}
	if cs := r.by[k]; !slices.Contains(cs, c) {
		r.by[k] = append(cs, c)
	}
}

// Remove forgets c under k; a key left without clients is dropped, so the
// registry holds only people connected now.
func (r *Registry[K, C]) Remove(k K, c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.by[k]
	i := slices.Index(cs, c)
	if i < 0 {
		return
	}
	if len(cs) == 1 {
		delete(r.by, k)
		return
	}
	r.by[k] = slices.Delete(cs, i, i+1) // Of hands out copies only
}

// Of returns k's clients, a copy the caller may use unlocked.
func (r *Registry[K, C]) Of(k K) []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.by[k])
}

// All returns every client of every key.
func (r *Registry[K, C]) All() []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []C
	for _, cs := range r.by {
		out = append(out, cs...)
	}
	return out
}

// Len is how many people have at least one client.
func (r *Registry[K, C]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.by)
}
