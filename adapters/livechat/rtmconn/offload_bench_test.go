package rtmconn

import (
	"context"
	"runtime"
	"testing"

	"chatgate/adapters/internal/gopool"
)

// BenchmarkOffloadUnderGC: 1,000 connections each serving a request in
// turn (a request takes ~12 KiB of stack, as the desk and the store do),
// with a collection every 1,000 requests: each connection serves about
// one request per collection, as 1,000 conversing customers do. What it
// measures is the offload's own cost per request, stack copies included
// (runtime.GC's own cost is excluded from the timer).
func BenchmarkOffloadUnderGC(b *testing.B) {
	const conns = 1000
	serve := func(context.Context, []byte) error { deep(12 << 10); return nil }
	pool := gopool.New(serveLinger)
	defer pool.Close()
	offs := make([]*offload, conns)
	for i := range offs {
		offs[i] = newOffload(serve, pool)
	}
	ctx := context.Background()
	frame := []byte("x")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := offs[i%conns].call(ctx, frame, true); err != nil {
			b.Fatal(err)
		}
		i++
		if i%conns == 0 {
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
		}
	}
}
