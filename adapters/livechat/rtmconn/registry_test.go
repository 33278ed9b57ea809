package rtmconn

import (
	"slices"
	"testing"
)

func TestRegistry(t *testing.T) {
	var r Registry[string, int]
	steps := []struct {
		op   string
		k    string
		c    int
		want map[string][]int
	}{
		{"add", "a", 1, map[string][]int{"a": {1}, "b": nil}},
		{"add", "a", 2, map[string][]int{"a": {1, 2}}},
		{"add", "b", 3, map[string][]int{"a": {1, 2}, "b": {3}}},
		{"add", "a", 2, map[string][]int{"a": {1, 2}}}, // twice is once
		{"remove", "a", 1, map[string][]int{"a": {2}, "b": {3}}},
		{"remove", "a", 9, map[string][]int{"a": {2}}}, // unknown client
		{"remove", "a", 2, map[string][]int{"a": nil, "b": {3}}},
	}
	for i, st := range steps {
		if st.op == "add" {
			r.Add(st.k, st.c)
		} else {
			r.Remove(st.k, st.c)
		}
		for k, want := range st.want {
			got := r.Of(k)
			slices.Sort(got)
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("step %d (%s %s %d): Of(%s) = %v, want %v", i, st.op, st.k, st.c, k, got, want)
			}
		}
	}
	if n := r.Len(); n != 1 {
		t.Fatalf("Len = %d after a's last client left, want 1", n)
	}
}
