// Package gcpace gives the garbage collector a minimum headroom: GOGC's
// default (100) lets the heap grow by as much as is live before the next
// collection, which for a gateway relaying messages with a small live
// heap (tens of MiB) means a collection every few hundred milliseconds
// under load: garbage collection and its allocation assists were a fifth
// of the CPU per relayed message (docs/performance.md). A fixed higher
// GOGC (200) cut the gateway's CPU per relayed message by about a sixth,
// but it also lets a large heap grow by twice what is live, and 19,000
// held idle connections then cost a third more memory each.
//
// So the pacer here keeps Go's rule for large heaps and only raises the
// headroom of small ones: the collector runs once the heap has grown by
// max(live, MinHeadroom), i.e. GOGC = 100 × max(live, MinHeadroom) /
// live, re-computed from what the last collection found ("live" as the
// collector paces it: the live heap, goroutine stacks and globals). A heap
// whose live part exceeds MinHeadroom is paced exactly as GOGC=100; a
// small one spends at most MinHeadroom more memory than it would have.
//
// GOGC set in the environment wins: the pacer is then not started.
package gcpace

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultMinHeadroom is the headroom chatgate gives a small heap.
const DefaultMinHeadroom = 64 << 20

// maxPercent bounds the GOGC the pacer sets: a nearly empty heap (a
// gateway at rest) gets a large headroom in bytes, never an unbounded
// ratio.
const maxPercent = 1000

// Percent is the GOGC that gives a heap with live bytes (as the collector
// paces them: live heap, stacks, globals) a headroom
// of max(live, minHeadroom): 100 for a large heap, more for a small one,
// at most maxPercent.
func Percent(live, minHeadroom uint64) int {
	if live == 0 || minHeadroom <= live {
		return 100
	}
	p := minHeadroom * 100 / live
	if p > maxPercent {
		return maxPercent
	}
	return int(p)
}

// Start paces the collector until stop is called, which restores the GOGC
// found at the start. It sets GOGC for the current live heap at once, then
// looks at the live heap every interval (the value of the last
// collection) and changes GOGC when the wanted value moved by more than a
// tenth. It does nothing (stop too) when minHeadroom is 0 or the
// environment sets GOGC (getenv("GOGC") != ""). GOGC is the process's:
// gateways started side by side in one process (tests) pace it together,
// and the last stop restores what its own start found.
func Start(minHeadroom uint64, interval time.Duration, getenv func(string) string) (stop func()) {
	if minHeadroom == 0 || getenv != nil && getenv("GOGC") != "" {
		return func() {}
	}
	// The collector's goal is the live heap plus GOGC% of everything it
	// scans (live heap, goroutine stacks, globals): the headroom is
	// reckoned against that sum.
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		var sum uint64
		for _, s := range sample {
			if s.Value.Kind() == metrics.KindUint64 {
				sum += s.Value.Uint64()
			}
		}
		if sample[0].Value.Kind() != metrics.KindUint64 || sample[0].Value.Uint64() == 0 {
			return 0 // no collection yet: Go's default until there is one
		}
		return sum
	}
	cur := Percent(live(), minHeadroom)
	prev := debug.SetGCPercent(cur)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			want := Percent(live(), minHeadroom)
			if d := want - cur; d*10 > cur || -d*10 > cur {
				debug.SetGCPercent(want)
				cur = want
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			debug.SetGCPercent(prev)
		})
	}
}
