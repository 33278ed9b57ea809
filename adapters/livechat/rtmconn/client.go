package rtmconn

import (
	"context"
	"net/http"

	"github.com/gorilla/websocket"

	"chatgate/adapters/internal/wsconn"
)

// DialBatched dials an RTM socket from the client's side (the load
// generator's agents, chatgate bench) such that WriteBatch can send several
// frames in one write(2) (wsconn.DialBatched).
func DialBatched(ctx context.Context, d *websocket.Dialer, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	return wsconn.DialBatched(ctx, d, url, h)
}

// WriteBatch writes frames in order, in one write(2) on a socket from
// DialBatched (wsconn.WriteBatch).
func WriteBatch(ws *websocket.Conn, frames [][]byte) error {
	return wsconn.WriteBatch(ws, frames)
}
