package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{"unknown live heap: Go's default", 0, 64 * mib, 100},
		{"large heap at rest: half its size", 600 * mib, 64 * mib, 50},
		{"heap at twice the floor: half its size", 128 * mib, 64 * mib, 50},
		{"live heap at the floor", 64 * mib, 64 * mib, 100},
		{"between the floor and twice it: the floor", 100 * mib, 64 * mib, 64},
		{"small heap gets the floor as headroom", 32 * mib, 64 * mib, 200},
		{"20 MiB live", 20 * mib, 64 * mib, 320},
		{"nearly empty heap: capped", 1 * mib, 64 * mib, maxPercent},
	} {
		if got := Percent(tc.live, tc.floor); got != tc.want {
			t.Errorf("%s: Percent(%d, %d) = %d, want %d", tc.name, tc.live, tc.floor, got, tc.want)
		}
	}
}

func TestBusyPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name               string
		live, floor, alloc uint64
		want               int
	}{
		{"at rest: the floor", 20 * mib, 64 * mib, 1 * mib, 320},
		{"unknown live heap: Go's default", 0, 64 * mib, 500 * mib, 100},
		{"busy small heap: a second of allocations", 20 * mib, 64 * mib, 160 * mib, 800},
		{"busy, rate below the floor: the floor", 20 * mib, 64 * mib, 40 * mib, 320},
		{"busy nearly empty heap: bounded in bytes, not by maxPercent", 4 * mib, 64 * mib, 100 * mib, 2500},
		{"very busy: at most MaxBusyHeadroom", 16 * mib, 64 * mib, 4096 * mib, MaxBusyHeadroom * 100 / (16 * mib)},
		{"large live heap, very busy: GOGC=100, never more", 600 * mib, 64 * mib, 4096 * mib, 100},
		{"large live heap, a little busy: half its size plus a second of allocations", 600 * mib, 64 * mib, 150 * mib, 75},
		{"large live heap, busy: up to its size", 600 * mib, 64 * mib, 300 * mib, 100},
	} {
		if got := BusyPercent(tc.live, tc.floor, tc.alloc); got != tc.want {
			t.Errorf("%s: BusyPercent(%d, %d, %d) = %d, want %d", tc.name, tc.live, tc.floor, tc.alloc, got, tc.want)
		}
	}
}

// gcPercent reads GOGC (SetGCPercent is the only reader).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestStart(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	// A test binary's live heap is far below a terabyte: the cap. (The
	// live heap is known once a collection has run.)
	runtime.GC()
	stop := Start(1<<40, time.Hour, func(string) string { return "" })
	if got := gcPercent(); got != maxPercent {
		t.Errorf("GOGC while paced = %d, want %d", got, maxPercent)
	}
	stop()
	stop() // idempotent
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC after stop = %d, want the 100 found at the start", got)
	}

	for name, getenv := range map[string]func(string) string{
		"GOGC in the environment wins": func(k string) string {
			if k == "GOGC" {
				return "150"
			}
			return ""
		},
		"no headroom: off": nil,
	} {
		floor := uint64(1 << 40)
		if getenv == nil {
			floor, getenv = 0, func(string) string { return "" }
		}
		stop := Start(floor, time.Hour, getenv)
		if got := gcPercent(); got != 100 {
			t.Errorf("%s: GOGC = %d, want 100 (untouched)", name, got)
		}
		stop()
	}
}

// TestStartBusy: with a floor of one byte the pacer alone would leave
// GOGC at 100; a program allocating far more per second than its live
// heap gets a higher GOGC from the busy headroom.
func TestStartBusy(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	runtime.GC() // the live heap is known
	stop := Start(1, 20*time.Millisecond, func(string) string { return "" })
	defer stop()
	deadline := time.Now().Add(20 * time.Second)
	for gcPercent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after allocating for 20 s", gcPercent())
		}
		for range 1000 {
			runtime.KeepAlive(make([]byte, 128<<10)) // over 64 KiB: on the heap
		}
	}
}
