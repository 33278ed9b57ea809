package gopool

import "testing"

// BenchmarkNewGoroutineDeepJob: a job 12 KiB deep on a goroutine the pool
// starts for it (a pool without linger), the cost of a new worker's stack
// growth included.
func BenchmarkNewGoroutineDeepJob(b *testing.B) {
	p := New(0)
	done := make(chan struct{})
	job := func() {
		deep(12 << 10)
		done <- struct{}{}
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Go(job)
		<-done
	}
}
