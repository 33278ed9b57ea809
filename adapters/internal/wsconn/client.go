package wsconn

import (
	"context"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// DialBatched is d.DialContext with the socket wrapped as Upgrade wraps a
// server's, so that WriteBatch can send several frames in one write(2).
// It is for clients that queue frames, such as the load generator's agents
// (chatgate bench), which answered every push with a write system call of
// its own; the server side of the same socket reads them in fewer reads.
func DialBatched(ctx context.Context, d *websocket.Dialer, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	dd := *d
	dial := dd.NetDialContext
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	dd.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &batchConn{Conn: c}, nil
	}
	return dd.DialContext(ctx, url, h)
}

// WriteBatch writes msgs as text frames, in order, in one write(2) when ws
// came from DialBatched or Upgrade (one write each otherwise). The caller
// is ws's one writer (gorilla allows one) and sets the write deadline.
func WriteBatch(ws *websocket.Conn, msgs [][]byte) error {
	bc, ok := ws.NetConn().(*batchConn)
	if ok {
		bc.begin(0) // the caller sets the deadline it wants
	}
	var err error
	for _, m := range msgs {
		if err = ws.WriteMessage(websocket.TextMessage, m); err != nil {
			break
		}
	}
	if ok {
		if ferr := bc.flush(); err == nil {
			err = ferr
		}
	}
	return err
}
