package hub

import (
	"context"
	"testing"

	"chatgate/core/model"
)

// nopJob is a Job that allocates nothing itself.
type nopJob struct{ n int }

func (j *nopJob) Run(context.Context) error { j.n++; return nil }

// TestAllocsPerMessage pins what the per-message paths allocate: a
// command on an idle key reuses an actor (it made one per command
// before), and a published notice is one allocation however many
// sessions receive it (the copy and its memo were two).
func TestAllocsPerMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	ctx := context.Background()
	a := NewActors(8)
	j := &nopJob{}
	key := Key{Space: "c", ID: "conv-1"}
	_ = a.Run(ctx, key, j) // fill the free pool
	b := NewBus()
	subs := []*Sub{b.SubscribeConv("conv-1", 4), b.SubscribeVisitor("v-1", 4), b.SubscribeDesk(4),
		b.SubscribeAgent(model.Agent{ID: "ann"}, 4)}
	// Sessions of other agents, of a supervisor: not offered this notice.
	b.SubscribeAgent(model.Agent{ID: "bob"}, 4)
	b.SubscribeAgent(model.Agent{ID: "sue", Supervisor: true, Departments: []model.DeptID{"sales"}}, 4)
	n := Notice{Conv: model.Conversation{ID: "conv-1", Visitor: "v-1", Agent: "ann", Department: "support"}}
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Actors.Run on an idle key", 0, func() { _ = a.Run(ctx, key, j) }},
		{"Bus.Publish to four subscribers", 1, func() {
			b.Publish(n)
			for _, s := range subs {
				<-s.C()
			}
		}},
	} {
		if got := testing.AllocsPerRun(200, tc.f); got > tc.max {
			t.Errorf("%s: %.1f allocations, want at most %.0f", tc.name, got, tc.max)
		}
	}
}
