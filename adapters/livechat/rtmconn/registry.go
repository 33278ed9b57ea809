package rtmconn

import "sync"

// Registry finds a surface's logged-in clients by whom they act for (an
// agent id, a customer id), so that pushes addressed to a person rather
// than to a conversation (routing_status_set, customer_updated) reach
// every session of that person on this node. The zero value is ready.
type Registry[K comparable, C comparable] struct {
	mu sync.Mutex
	by map[K]map[C]struct{}
}

// Add makes c reachable under k.
func (r *Registry[K, C]) Add(k K, c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = make(map[K]map[C]struct{})
	}
	m := r.by[k]
	if m == nil {
		m = make(map[C]struct{})
		r.by[k] = m
	}
	m[c] = struct{}{}
}

// Remove forgets c under k; a key left without clients is dropped, so the
// registry holds only people connected now.
func (r *Registry[K, C]) Remove(k K, c C) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.by[k]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(r.by, k)
		}
	}
}

// Of returns k's clients, a copy the caller may use unlocked.
func (r *Registry[K, C]) Of(k K) []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]C, 0, len(r.by[k]))
	for c := range r.by[k] {
		out = append(out, c)
	}
	return out
}

// All returns every client of every key.
func (r *Registry[K, C]) All() []C {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []C
	for _, m := range r.by {
		for c := range m {
			out = append(out, c)
		}
	}
	return out
}

// Len is how many people have at least one client.
func (r *Registry[K, C]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.by)
}
