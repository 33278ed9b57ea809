package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// httpConn is one load-generating visitor's keep-alive HTTP/1.1
// connection (v2 and Rocket.Chat REST): requests written whole in one
// write, answers read with net/http's own parser. A visitor makes one
// request at a time, so it needs no connection pool: http.Transport's
// pool and its two goroutines per connection (a request and its answer
// each cross goroutines) were a large part of the load generator's CPU in
// v2 and Rocket.Chat runs, a cost the raw echo's clients do not pay (a
// widget, too, sends over a connection of its own). On an error the
// connection is dropped and the next request dials again.
type httpConn struct {
	ctx        context.Context
	host, path string   // Host header; path prefix of every request
	header     string   // extra header lines, each ending in \r\n
	ctype      string   // Content-Type of request bodies
	c          net.Conn // nil when dropped
	stop       func() bool
	br         *bufio.Reader
	buf        []byte
}

// newHTTPConn returns a connection to base's host whose requests go to
// base's path plus a tail, with the extra header lines header and bodies
// of type ctype. It dials on the first request; when ctx ends, the
// connection is closed under a request waiting for its answer.
func newHTTPConn(ctx context.Context, base, header, ctype string) (*httpConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("load client: %s: only http:// targets", base)
	}
	return &httpConn{ctx: ctx, host: u.Host, path: u.EscapedPath(), header: header, ctype: ctype}, nil
}

// newV2Conn is a v2 visitor's connection: base is its .../chat/ path.
func newV2Conn(ctx context.Context, base string) (*httpConn, error) {
	return newHTTPConn(ctx, base, "X-API-Version: 2\r\n", "application/x-www-form-urlencoded")
}

// do sends method path+tail with body (POST, of the connection's type)
// and returns the body of a 200 answer.
func (v *httpConn) do(method, tail, body string) ([]byte, error) {
	if v.c == nil {
		if err := v.dial(); err != nil {
			return nil, err
		}
	}
	b := append(v.buf[:0], method...)
	b = append(b, ' ')
	b = append(b, v.path...)
	b = append(b, tail...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, v.host...)
	b = append(b, "\r\n"...)
	b = append(b, v.header...)
	if method == http.MethodPost {
		b = append(b, "Content-Type: "...)
		b = append(b, v.ctype...)
		b = append(b, "\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	v.buf = b
	if _, err := v.c.Write(b); err != nil {
		v.drop()
		return nil, err
	}
	resp, err := http.ReadResponse(v.br, nil)
	if err != nil {
		v.drop()
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil || resp.Close {
		v.drop()
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s%s: %d %.200s", method, v.path, tail, resp.StatusCode, out)
	}
	return out, nil
}

func (v *httpConn) dial() error {
	var d net.Dialer
	c, err := d.DialContext(v.ctx, "tcp", v.host)
	if err != nil {
		return err
	}
	v.c, v.br = c, bufio.NewReaderSize(c, 4096)
	// The load phase ends by its context: a request waiting for its
	// answer then returns with the connection closed under it.
	v.stop = context.AfterFunc(v.ctx, func() { c.Close() })
	return nil
}

// use makes ctx the connection's context from now on: a connection
// dialled ahead of the load phase (so that the phase does not measure
// connection set-up) is closed when the phase's context ends.
func (v *httpConn) use(ctx context.Context) {
	v.ctx = ctx
	if v.c != nil {
		v.stop()
		c := v.c
		v.stop = context.AfterFunc(ctx, func() { c.Close() })
	}
}

func (v *httpConn) drop() {
	if v.c != nil {
		v.stop()
		v.c.Close()
		v.c = nil
	}
}

func (v *httpConn) close() { v.drop() }
