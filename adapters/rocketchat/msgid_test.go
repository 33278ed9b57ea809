package rocketchat

import (
	"strings"
	"testing"
	"time"
)

// TestNewMessageIDSortsByTime: server-chosen message ids have the shape of
// Meteor's ids and sort by the time they were made, so that their
// idempotency rows append to the store's index rather than land on
// random pages.
func TestNewMessageIDSortsByTime(t *testing.T) {
	prev := newMessageID()
	seen := map[string]bool{prev: true}
	for range 3 {
		time.Sleep(2 * time.Millisecond)
		id := newMessageID()
		if len(id) != 17 || strings.Trim(id, meteorChars) != "" {
			t.Fatalf("id %q is not 17 Meteor characters", id)
		}
		if id <= prev || seen[id] {
			t.Fatalf("id %q made after %q does not sort after it", id, prev)
		}
		seen[id], prev = true, id
	}
}
