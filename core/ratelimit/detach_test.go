package ratelimit

import (
	"context"
	"testing"
)

// TestDetach: the detached context keeps the client address and the
// exemption, and neither ends with the request nor carries its other
// values.
func TestDetach(t *testing.T) {
	type otherKey struct{}
	tests := []struct {
		name   string
		ctx    func(context.Context) context.Context
		addr   string
		exempt bool
	}{
		{"nothing", func(c context.Context) context.Context { return c }, "", false},
		{"address", func(c context.Context) context.Context { return WithAddr(c, "203.0.113.7") }, "203.0.113.7", false},
		{"exempt", func(c context.Context) context.Context { return WithExempt(WithAddr(c, "10.0.0.0/24")) }, "10.0.0.0/24", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "request value"))
			d := Detach(tt.ctx(req))
			cancel()
			if d.Done() != nil || d.Err() != nil {
				t.Fatalf("detached context ends with the request: Done %v, Err %v", d.Done(), d.Err())
			}
			if got := AddrFrom(d); got != tt.addr {
				t.Fatalf("AddrFrom = %q, want %q", got, tt.addr)
			}
			if got := Exempt(d); got != tt.exempt {
				t.Fatalf("Exempt = %v, want %v", got, tt.exempt)
			}
			if v := d.Value(otherKey{}); v != nil {
				t.Fatalf("detached context keeps the request's other values: %v", v)
			}
		})
	}
}
