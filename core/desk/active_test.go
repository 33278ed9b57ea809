package desk

import (
	"context"
	"maps"
	"testing"

	"chatgate/core/model"
)

// TestActiveBySource: starts count by origin, closes uncount (once, however
// often Close is called), and Load counts what is active on disk.
func TestActiveBySource(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	ctx := context.Background()
	c1, _ := e.start(e.visitor("a"), "sales")
	e.start(e.visitor("b"), "sales")
	if got, want := e.d.ActiveBySource(), map[string]int{"test": 2}; !maps.Equal(got, want) {
		t.Fatalf("after two starts: %v, want %v", got, want)
	}
	for range 2 {
		_, _ = e.d.Close(ctx, c1.ID, model.System, "", "")
	}
	if got, want := e.d.ActiveBySource(), map[string]int{"test": 1}; !maps.Equal(got, want) {
		t.Fatalf("after a close: %v, want %v", got, want)
	}
	e.bolt.Close()
	re := newEnv(t, config{path: e.path})
	if err := re.d.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := re.d.ActiveBySource(), map[string]int{"test": 1}; !maps.Equal(got, want) {
		t.Fatalf("after Load: %v, want %v", got, want)
	}
}
