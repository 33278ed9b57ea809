package main

import (
	"sync"
	"time"
)

// waitBounded waits for wg at most d and reports whether it finished: for
// shutdowns and reports that must not hang on a goroutine that does not
// let go (it is left behind, the process is ending).
func waitBounded(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
