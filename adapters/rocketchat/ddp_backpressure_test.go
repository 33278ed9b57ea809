package rocketchat

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPipelinedMethodsBackpressure (issue 16, also seen): a client that
// pipelines hundreds of cheap methods before reading gets every result,
// in order: the session stops taking work while its send queue is full
// (backpressure through the socket) instead of dropping the client as a
// slow consumer.
func TestPipelinedMethodsBackpressure(t *testing.T) {
	e := newDDPEnv(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(e.url("/websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteJSON(map[string]any{"msg": "connect", "version": "1", "support": []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	const n = 600
	// All written in one go (a few frames per TCP write), none read yet.
	for i := range n {
		m := map[string]any{"msg": "method", "id": fmt.Sprint(i), "method": "UserPresence:online", "params": []any{}}
		if err := ws.WriteJSON(m); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	next := 0
	for next < n {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d results: %v", next, err)
		}
		var f map[string]any
		_ = json.Unmarshal(b, &f)
		if f["msg"] != "result" {
			continue
		}
		if f["id"] != fmt.Sprint(next) || f["error"] != nil {
			t.Fatalf("result %d: %s", next, b)
		}
		next++
	}
}
