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
		{"live heap above the floor: Go's default", 600 * mib, 64 * mib, 100},
		{"live heap at the floor", 64 * mib, 64 * mib, 100},
		{"small heap gets the floor as headroom", 32 * mib, 64 * mib, 200},
		{"20 MiB live", 20 * mib, 64 * mib, 320},
		{"nearly empty heap: capped", 1 * mib, 64 * mib, maxPercent},
	} {
		if got := Percent(tc.live, tc.floor); got != tc.want {
			t.Errorf("%s: Percent(%d, %d) = %d, want %d", tc.name, tc.live, tc.floor, got, tc.want)
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
