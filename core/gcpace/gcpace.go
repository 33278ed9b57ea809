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
// So the pacer here raises the headroom of small heaps: the collector
// runs once the heap has grown by at least MinHeadroom, i.e. GOGC ≥ 100 ×
// MinHeadroom / live, re-computed from what the last collection found
// ("live" as the collector paces it: the live heap, goroutine stacks and
// globals); a small heap spends at most MinHeadroom more memory than it
// would have.
//
// A large heap at rest gets less than Go's rule: half its live size as
// headroom (GOGC=50), plus what it allocates in a BusyInterval, up to its
// live size (GOGC=100, Go's default) once it is busy. A gateway holding
// many idle connections has a large live heap (their buffers and stacks)
// and allocates little: GOGC=100 let its heap grow to twice what is live
// while the connections were opened, and kept that as RSS. At rest the
// extra collections cost next to nothing; a busy gateway is paced as
// before (docs/performance.md, "Round 9", "Idle connections at rest").
//
// A busy gateway with a small live heap allocates its headroom quickly:
// at 5,000 relayed messages/s the 64 MiB floor was collected about twice
// a second, and every collection takes a quarter of the CPU for its
// marking and makes allocating goroutines assist it, which, on a 2-core
// machine, delays the messages in flight meanwhile (the open-loop p99 of
// docs/performance.md, "Round 5: open-loop latency"). So the headroom
// also follows the allocation rate: at least what the program allocated
// in the last BusyInterval (measured over the pacer's interval), at most
// MaxBusyHeadroom. A gateway at rest or holding idle connections
// allocates little and keeps the floor; a heap whose live part exceeds
// the busy headroom is paced as GOGC=100 whatever the rate.
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

// maxPercent bounds the GOGC the floor alone sets: a nearly empty heap (a
// gateway at rest) gets a large headroom in bytes, never an unbounded
// ratio. The busy headroom is bounded in bytes instead (MaxBusyHeadroom).
const maxPercent = 1000

// BusyInterval is how long a busy program's allocations should take to
// fill its headroom: it is collected about this often at most (unless
// its live heap or MaxBusyHeadroom says otherwise).
const BusyInterval = time.Second

// MaxBusyHeadroom bounds the headroom the allocation rate gives: the most
// memory a busy gateway spends, beyond its live heap, on collecting less
// often.
const MaxBusyHeadroom = 256 << 20

// Percent is the GOGC that gives a heap at rest with live bytes (as the
// collector paces them: live heap, stacks, globals) a headroom of
// max(live/2, minHeadroom): 50 for a large heap, more for a small one, at
// most maxPercent.
func Percent(live, minHeadroom uint64) int {
	return BusyPercent(live, minHeadroom, 0)
}

// BusyPercent is Percent for a program that allocated allocRate bytes/s
// lately. With a = allocRate × BusyInterval and busy = min(a,
// MaxBusyHeadroom), the headroom is max(min(live, live/2 + a),
// minHeadroom, busy): a large heap goes from half its size at rest to its
// size (GOGC=100) as it gets busy, and a busy program with a small live
// heap is collected about once a BusyInterval rather than as often as its
// allocations fill the floor.
func BusyPercent(live, minHeadroom, allocRate uint64) int {
	if live == 0 {
		return 100
	}
	second := allocRate * uint64(BusyInterval/time.Millisecond) / 1000 // allocated in a BusyInterval
	busy := min(second, MaxBusyHeadroom)
	head := min(live, live/2+second)
	p := head * 100 / live
	if minHeadroom > head {
		p = max(p, min(minHeadroom*100/live, maxPercent))
	}
	if busy > head {
		p = max(p, busy*100/live)
	}
	return int(p)
}

// Start paces the collector until stop is called, which restores the GOGC
// found at the start. It sets GOGC for the current live heap at once, then
// looks at the live heap (the value of the last collection) and the
// allocation rate every interval and changes GOGC (BusyPercent) when the
// wanted value moved by more than a tenth. It does nothing (stop too) when minHeadroom is 0 or the
// environment sets GOGC (getenv("GOGC") != ""). GOGC is the process's:
// gateways started side by side in one process (tests) pace it together,
// and the last stop restores what its own start found.
func Start(minHeadroom uint64, interval time.Duration, getenv func(string) string) (stop func()) {
	if minHeadroom == 0 || getenv != nil && getenv("GOGC") != "" {
		return func() {}
	}
	// The collector's goal is the live heap plus GOGC% of everything it
	// scans (live heap, goroutine stacks, globals): the headroom is
	// reckoned against that sum. The last sample, the bytes allocated
	// since the start, gives the allocation rate.
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
		{Name: "/gc/heap/allocs:bytes"}}
	uintOf := func(s metrics.Sample) uint64 {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s.Value.Uint64()
	}
	var lastAllocs uint64
	lastAt := time.Now()
	// read returns the live bytes as the collector paces them (0 before
	// the first collection: Go's default until there is one) and the
	// bytes allocated per second since the previous read.
	read := func() (live, rate uint64) {
		metrics.Read(sample)
		if uintOf(sample[0]) != 0 {
			live = uintOf(sample[0]) + uintOf(sample[1]) + uintOf(sample[2])
		}
		allocs, now := uintOf(sample[3]), time.Now()
		if d := now.Sub(lastAt); lastAllocs != 0 && allocs > lastAllocs && d > 0 {
			rate = uint64(float64(allocs-lastAllocs) / d.Seconds())
		}
		lastAllocs, lastAt = allocs, now
		return live, rate
	}
	live, rate := read()
	cur := BusyPercent(live, minHeadroom, rate)
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
			live, rate := read()
			want := BusyPercent(live, minHeadroom, rate)
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
