package agentrtm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHardFrameCapSingleThreadedClient (issue 16, "also seen": an agent
// RTM frame over 1 MiB closed with 1006 instead of 1009). A client that
// writes its whole message before it reads anything (a browser tab or
// Node's ws, one thread) must be able to finish writing and then read the
// 1009 close frame. Had the gateway closed the socket with the rest of the
// message unread, the kernel would answer the client's write with a reset
// (ECONNRESET): gorilla still reads the close frame after that, but
// clients that abandon the socket on a write error report 1006. So the
// write must succeed, with and without pushes streaming to the agent
// meanwhile (which the client does not read while it writes). Found with
// the drain of wsconn.Conn.startDrain removed: the write of 3 MiB and more
// failed with "connection reset by peer".
func TestHardFrameCapSingleThreadedClient(t *testing.T) {
	for _, busy := range []bool{false, true} {
		for _, size := range []int{hardFrameCap + 1, 3 * hardFrameCap, 8 * hardFrameCap} {
			t.Run(fmt.Sprintf("busy=%v/%d", busy, size), func(t *testing.T) {
				h := newHarness(t, nil)
				ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+"/v3.5/agent/rtm/ws", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close()
				if err := ws.WriteJSON(map[string]any{"request_id": "l", "action": "login", "payload": map[string]any{"token": "Bearer tok-alice"}}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var wg sync.WaitGroup
				defer wg.Wait()
				if busy {
					// Chats starting: incoming_chat pushes to the agent.
					for w := range 2 {
						wg.Go(func() {
							for i := 0; ctx.Err() == nil && i < 100; i++ {
								h.startChat(t, fmt.Sprintf("V%d-%d", w, i), "")
							}
						})
					}
					time.Sleep(20 * time.Millisecond)
				}
				werr := ws.WriteMessage(websocket.TextMessage, req("big", "ping", map[string]any{"junk": strings.Repeat("z", size)}))
				if werr != nil {
					t.Errorf("writing the oversized frame: %v (the gateway reset the socket before reading it)", werr)
				}
				_ = ws.SetReadDeadline(time.Now().Add(waitLimit))
				var cerr error
				for cerr == nil {
					_, _, cerr = ws.ReadMessage()
				}
				cancel()
				var ce *websocket.CloseError
				if !errors.As(cerr, &ce) || ce.Code != websocket.CloseMessageTooBig {
					t.Fatalf("close = %v, want 1009", cerr)
				}
			})
		}
	}
}
