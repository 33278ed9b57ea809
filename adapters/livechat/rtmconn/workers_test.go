package rtmconn

import (
	"sync"
	"testing"
)

// TestWorkersRunEverything: every task runs, on the pool while it is open
// and on plain goroutines after release (sessions may outlive Run).
func TestWorkersRunEverything(t *testing.T) {
	for _, tc := range []struct {
		name     string
		released bool
	}{{"open", false}, {"released", true}, {"zero", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var w workers
			if tc.name != "zero" {
				w = newWorkers()
				defer w.release()
			}
			if tc.released {
				w.release()
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			ran := 0
			for range 500 {
				wg.Add(1)
				w.Go(func() {
					defer wg.Done()
					mu.Lock()
					ran++
					mu.Unlock()
				})
			}
			wg.Wait()
			if ran != 500 {
				t.Fatalf("ran %d of 500", ran)
			}
		})
	}
}
