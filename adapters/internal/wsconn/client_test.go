package wsconn

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// writeCounter counts the writes that reach the real socket.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestWriteBatchOneWrite: frames written together by WriteBatch on a
// DialBatched socket reach the socket in one write and the peer whole and
// in order; on a socket dialled otherwise, one write each.
func TestWriteBatchOneWrite(t *testing.T) {
	frames := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer ws.Close()
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(b)
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, tc := range []struct {
		name    string
		batched bool
		writes  int64
	}{
		{"batched", true, 1},
		{"plain", false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return writeCounter{Conn: c, n: &n}, nil
			}}
			dial := d.DialContext
			if tc.batched {
				dial = func(ctx context.Context, u string, h http.Header) (*websocket.Conn, *http.Response, error) {
					return DialBatched(ctx, d, u, h)
				}
			}
			ws, _, err := dial(t.Context(), url, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer ws.Close()
			before := n.Load() // the handshake's
			if err := WriteBatch(ws, [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
				t.Fatal(err)
			}
			if got := n.Load() - before; got != tc.writes {
				t.Errorf("%d writes reached the socket, want %d", got, tc.writes)
			}
			var got []string
			for range 3 {
				got = append(got, <-frames)
			}
			if s := fmt.Sprint(got); s != "[a b c]" {
				t.Errorf("peer read %s, want [a b c]", s)
			}
		})
	}
}
