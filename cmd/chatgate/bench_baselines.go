package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
)

// benchBaselines are the figures of the same machine, in the same run, that
// chatgate's are held against.
type benchBaselines struct {
	DurationSec float64 `json:"duration_s"`
	Clients     int     `json:"clients"`
	// EchoMsgsPerSec: messages a gorilla/websocket echo server on loopback
	// sends back per second (clients × window in flight).
	EchoMsgsPerSec float64        `json:"echo_msgs_per_s"`
	EchoLatency    latencySummary `json:"echo_latency"`
	// BoltEchoMsgsPerSec: the same echo, committing each message to a
	// chatgate bbolt store (fsync'd, group commit) before echoing it.
	BoltEchoMsgsPerSec float64        `json:"bolt_echo_msgs_per_s"`
	BoltEchoLatency    latencySummary `json:"bolt_echo_latency"`
	// GinReqPerSec: a gin hello-world's requests/s with `clients`
	// concurrent keep-alive clients.
	GinReqPerSec float64 `json:"gin_hello_req_per_s"`
}

func runBaselines(ctx context.Context, clients, window int, d time.Duration) (*benchBaselines, error) {
	b := &benchBaselines{DurationSec: d.Seconds(), Clients: clients}
	var err error
	if b.EchoMsgsPerSec, b.EchoLatency, err = runEcho(ctx, clients, window, d, nil); err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	dir, err := os.MkdirTemp("", "chatgate-bench-bolt-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := bolt.Open(filepath.Join(dir, "echo.db"), bolt.Options{})
	if err != nil {
		return nil, err
	}
	b.BoltEchoMsgsPerSec, b.BoltEchoLatency, err = runEcho(ctx, clients, window, d, st)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bbolt echo: %w", err)
	}
	if b.GinReqPerSec, err = runGinHello(ctx, clients, d); err != nil {
		return nil, fmt.Errorf("gin: %w", err)
	}
	return b, nil
}

// serveLoopback serves h on 127.0.0.1:0 until the returned stop is called.
func serveLoopback(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// runEcho runs a websocket echo server (committing each message to st
// first, when st is set) and `clients` clients keeping `window` messages
// in flight each, for d. It returns echoed messages/s and their round-trip
// latency.
func runEcho(ctx context.Context, clients, window int, d time.Duration, st *bolt.Store) (float64, latencySummary, error) {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	var handlers sync.WaitGroup
	var commitErr atomic.Pointer[error]
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		conn, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		at := time.Now().UTC()
		visitor := model.VisitorID(model.NewID())
		conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: visitor, State: model.StateOpen,
			Agent: "agent-1", Origin: "bench", CreatedAt: at}
		author := model.Author{Kind: model.AuthorVisitor, ID: string(visitor), Name: "Vera"}
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if st != nil {
				conv.LastSeq++
				err := st.Commit(req.Context(), &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{{
					Conv: conv.ID, Seq: conv.LastSeq, ID: model.NewID(), Kind: model.KindMessage, Author: author, At: at, Text: string(msg)}}})
				if err != nil {
					commitErr.CompareAndSwap(nil, &err)
					return
				}
			}
			if err := conn.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})
	addr, stop, err := serveLoopback(h)
	if err != nil {
		return 0, latencySummary{}, err
	}
	defer stop()
	// Bounded: a handler stuck on a peer that vanished must not hang the
	// report (one unexplained hang was seen once in ~15 Rocket.Chat runs).
	defer waitBounded(&handlers, 10*time.Second)

	ectx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var count atomic.Int64
	lats := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	conns := make([]*websocket.Conn, clients)
	for i := range clients {
		c, _, err := benchDialer.DialContext(ectx, "ws://"+addr+"/", nil)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return 0, latencySummary{}, err
		}
		conns[i] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			defer c.Close()
			stopper := context.AfterFunc(ectx, func() { c.Close() })
			defer stopper()
			var n int64
			send := func() error {
				n++
				return c.WriteMessage(websocket.TextMessage, []byte(benchText("bench", i, n)))
			}
			for range window {
				if err := send(); err != nil {
					errs <- err
					return
				}
			}
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					if ectx.Err() == nil {
						errs <- err
					}
					return
				}
				if _, _, sent, ok := parseBenchText("bench", string(msg)); ok {
					lats[i] = append(lats[i], time.Since(sent))
				}
				count.Add(1)
				if err := send(); err != nil {
					if ectx.Err() == nil {
						errs <- err
					}
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, latencySummary{}, err
	}
	if p := commitErr.Load(); p != nil {
		return 0, latencySummary{}, *p
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return float64(count.Load()) / elapsed.Seconds(), summarize(all), nil
}

// runGinHello serves a gin hello-world and hits it with `clients`
// concurrent keep-alive clients for d; it returns requests/s.
func runGinHello(ctx context.Context, clients int, d time.Duration) (float64, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "Hello, World!") })
	addr, stop, err := serveLoopback(r)
	if err != nil {
		return 0, err
	}
	defer stop()
	client := newBenchHTTPClient(clients)
	defer client.CloseIdleConnections()
	gctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var count atomic.Int64
	var failed atomic.Pointer[error]
	url := "http://" + addr + "/hello"
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for gctx.Err() == nil {
				req, _ := http.NewRequestWithContext(gctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if gctx.Err() == nil {
						failed.CompareAndSwap(nil, &err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err := errors.New("status " + strconv.Itoa(resp.StatusCode))
					failed.CompareAndSwap(nil, &err)
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return 0, *p
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}
