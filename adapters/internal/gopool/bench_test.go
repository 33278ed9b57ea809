package gopool

import (
	"testing"
	"time"
)

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

// BenchmarkHandOff: a job handed to the pool's idle goroutine and waited
// for, one at a time, as a connection's request is (the cost of the
// hand-off itself: the job does nothing).
func BenchmarkHandOff(b *testing.B) {
	p := New(time.Minute)
	defer p.Close()
	done := make(chan struct{})
	job := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		p.Go(job)
		<-done
	}
}

// BenchmarkHandOffParallel: the same from several goroutines at once (the
// pool's lock and idle stack shared, several workers waiting).
func BenchmarkHandOffParallel(b *testing.B) {
	p := New(time.Minute)
	defer p.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		done := make(chan struct{})
		job := func() { done <- struct{}{} }
		for pb.Next() {
			p.Go(job)
			<-done
		}
	})
}
