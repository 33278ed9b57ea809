package wire

import (
	"testing"
)

// TestPusher: the login's narrowing and a Web API request's silence hold
// for both kinds of push, and a pushed event is the frame Push would
// have written for it.
func TestPusher(t *testing.T) {
	ev := &IncomingEvent{ChatID: "C", ThreadID: "T"}
	want, err := EncodePush(&Push{Version: "3.5", RequestID: "r1", Action: "incoming_event", Type: TypePush, Payload: *ev})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		only       map[string]bool
		web        bool
		wantFrames int
	}{
		{"every push", nil, false, 2},
		{"narrowed to incoming_event", map[string]bool{"incoming_event": true}, false, 1},
		{"narrowed to something else", map[string]bool{"chat_deactivated": true}, false, 0},
		{"web api request", nil, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]byte
			p := Pusher{Version: "3.5", Only: tc.only, Web: tc.web,
				Out: func(f []byte) error { frames = append(frames, f); return nil },
				Log: func(err error) { t.Errorf("log: %v", err) }}
			p.PushEvent("r1", ev)
			p.Push("", "incoming_typing_indicator", map[string]any{"chat_id": "C"})
			if len(frames) != tc.wantFrames {
				t.Fatalf("%d frames, want %d", len(frames), tc.wantFrames)
			}
			if tc.only == nil && !tc.web && string(frames[0]) != string(want) {
				t.Errorf("event frame %s, want %s", frames[0], want)
			}
		})
	}
	var logged error
	p := Pusher{Version: "3.5", Out: func([]byte) error { t.Error("wrote a frame that did not encode"); return nil },
		Log: func(err error) { logged = err }}
	p.Push("", "x", func() {})
	if logged == nil {
		t.Error("an unencodable push was not logged")
	}
}
