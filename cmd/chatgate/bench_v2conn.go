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

// v2Conn is one v2 visitor's keep-alive HTTP/1.1 connection: requests
// written whole in one write, answers read with net/http's own parser.
// A visitor makes one request at a time, so it needs no connection pool:
// http.Transport's pool and its two goroutines per connection (a request
// and its answer each cross goroutines) were a large part of the load
// generator's CPU in v2 runs, a cost the raw echo's clients do not pay.
// On an error the connection is dropped and the next request dials again.
type v2Conn struct {
	ctx        context.Context
	host, path string   // Host header; path of .../chat/
	c          net.Conn // nil when dropped
	stop       func() bool
	br         *bufio.Reader
	buf        []byte
}

func newV2Conn(ctx context.Context, base string) (*v2Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("v2 load client: %s: only http:// targets", base)
	}
	return &v2Conn{ctx: ctx, host: u.Host, path: u.EscapedPath()}, nil
}

// do sends method path+tail with form (POST, form-encoded) and returns the
// body of a 200 answer.
func (v *v2Conn) do(method, tail, form string) ([]byte, error) {
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
	b = append(b, "\r\nX-API-Version: 2\r\n"...)
	if method == http.MethodPost {
		b = append(b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(form)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, form...)
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil || resp.Close {
		v.drop()
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s%s: %d %.200s", method, v.path, tail, resp.StatusCode, body)
	}
	return body, nil
}

func (v *v2Conn) dial() error {
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

func (v *v2Conn) drop() {
	if v.c != nil {
		v.stop()
		v.c.Close()
		v.c = nil
	}
}

func (v *v2Conn) close() { v.drop() }
