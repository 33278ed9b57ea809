package desk

import (
	"errors"
	"sync/atomic"
	"testing"

	"chatgate/core/model"
)

// TestPostRead: a post of the conversation as the caller read it decides on
// that copy (no second read) when it is current, and is as safe as a read
// under the actor when it is not: a copy that changed since (a message, a
// close) is seen to be overtaken (the store's cached revision is newer)
// and the post reads the store's conversation instead, without a commit
// that would fail as stale (round 8; "a message since" had a stale retry
// before); a copy of another conversation is not used.
func TestPostRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// between changes the conversation after the copy was read.
		between   func(e *env, c model.Conversation, v model.Visitor)
		other     bool  // hand a copy of another conversation
		noRev     bool  // hand the copy without its revision
		wantErr   error // nil: the post commits
		wantReads int32 // the desk's conversation reads during PostRead
		wantStale int32 // the desk's stale retries during PostRead
	}{
		{name: "current copy", wantReads: 0},
		{name: "a message since", between: func(e *env, c model.Conversation, v model.Visitor) {
			e.post(c.ID, visitorAuthor(v), "in between")
		}, wantReads: 1}, // the store's copy, at once
		{name: "closed since", between: func(e *env, c model.Conversation, v model.Visitor) {
			if _, err := e.d.Close(t.Context(), c.ID, visitorAuthor(v), "", ""); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrInactive, wantReads: 2, wantStale: 2}, // stale commit (a closed conversation leaves the cache: not seen overtaken), cached read, the refusal's fresh read
		{name: "copy of another conversation", other: true, wantReads: 1},
		// Found by helper rclast: a Rev 0 copy commits unconditionally, so
		// a message since would collide on its seq instead of retrying.
		{name: "copy without a revision, a message since", noRev: true, between: func(e *env, c model.Conversation, v model.Visitor) {
			e.post(c.ID, visitorAuthor(v), "in between")
		}, wantReads: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reads, stale atomic.Int32
			e := newEnv(t, config{beforeRead: func(model.ConvID) { reads.Add(1) }, onStale: func() { stale.Add(1) }})
			v := e.visitor("vera")
			c, _ := e.start(v, "sales")
			read := e.conv(c.ID)
			if tc.other {
				w := e.visitor("walt")
				o, _ := e.start(w, "sales")
				read = e.conv(o.ID)
			}
			if tc.noRev {
				read.Rev = 0
			}
			if tc.between != nil {
				tc.between(e, c, v)
			}
			before := e.conv(c.ID).LastSeq
			reads.Store(0)
			stale.Store(0)
			ev, _, err := e.d.PostRead(t.Context(), PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "hello"}}, &read)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("PostRead: %v, want %v", err, tc.wantErr)
			}
			if got := reads.Load(); got != tc.wantReads {
				t.Errorf("conversation reads: %d, want %d", got, tc.wantReads)
			}
			if got := stale.Load(); got != tc.wantStale {
				t.Errorf("stale retries: %d, want %d", got, tc.wantStale)
			}
			evs := e.checkLog(c.ID)
			want := before
			if tc.wantErr == nil {
				want++
			}
			if got := uint64(len(evs)); got != want {
				t.Errorf("%d events after the post, want %d", got, want)
			}
			if tc.wantErr == nil {
				if ev.Conv != c.ID || ev.Seq != uint64(len(evs)) || evs[ev.Seq-1].Text != "hello" {
					t.Errorf("posted event %s #%d, log of %d: want the message last in %s", ev.Conv, ev.Seq, len(evs), c.ID)
				}
			}
		})
	}
}
