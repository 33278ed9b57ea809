package main

import (
	"context"
	"encoding/binary"
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
	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
)

// benchBaselines are the figures of the same machine, in the same run, that
// chatgate's are held against.
type benchBaselines struct {
	DurationSec float64 `json:"duration_s"`
	Clients     int     `json:"clients"`
	// OpenLoopRate, when set, is the messages/s the clients of every
	// baseline offered on schedule (open loop, as the visitors of a
	// --rate run): the latencies are then the floor of that run's, at
	// the same rate of websocket messages and durable commits; the gin
	// baseline is not run.
	OpenLoopRate float64 `json:"open_loop_rate,omitempty"`
	// EchoMsgsPerSec: messages a gorilla/websocket echo server on loopback
	// sends back per second (clients × window in flight).
	EchoMsgsPerSec float64        `json:"echo_msgs_per_s"`
	EchoLatency    latencySummary `json:"echo_latency"`
	// CPU per echoed message of each echo (this process: server and
	// clients together), µs.
	EchoCPUMicros           float64 `json:"echo_cpu_us_per_msg,omitempty"`
	RawDurableEchoCPUMicros float64 `json:"raw_durable_echo_cpu_us_per_msg,omitempty"`
	BoltEchoCPUMicros       float64 `json:"bolt_echo_cpu_us_per_msg,omitempty"`
	// RawDurableEchoMsgsPerSec: the same echo, writing each message to
	// bbolt directly before echoing it: one group-commit writer goroutine
	// (fsync'd), a 16-byte key (connection ‖ message number) and the
	// payload as value, nothing of chatgate's store. This is the physical
	// floor of "save, then answer" on this machine: the headline ratio
	// (relayed_vs_raw_durable_echo) is held against it.
	RawDurableEchoMsgsPerSec float64        `json:"raw_durable_echo_msgs_per_s"`
	RawDurableEchoLatency    latencySummary `json:"raw_durable_echo_latency"`
	// BoltEchoMsgsPerSec: the same echo, committing each message through
	// chatgate's store (store/bolt: a conversation record and an event per
	// message, as a Post writes) before echoing it: the "in-store echo".
	BoltEchoMsgsPerSec float64        `json:"bolt_echo_msgs_per_s"`
	BoltEchoLatency    latencySummary `json:"bolt_echo_latency"`
	// GinReqPerSec: a gin hello-world's requests/s with `clients`
	// concurrent keep-alive clients.
	GinReqPerSec float64 `json:"gin_hello_req_per_s"`
}

// runBaselines runs the baselines with `clients` clients, each keeping
// `window` messages in flight, or, with rate > 0, open-loop at rate
// messages/s in all.
func runBaselines(ctx context.Context, clients, window int, rate float64, d time.Duration) (*benchBaselines, error) {
	b := &benchBaselines{DurationSec: d.Seconds(), Clients: clients, OpenLoopRate: rate}
	var err error
	if b.EchoMsgsPerSec, b.EchoLatency, b.EchoCPUMicros, err = runEcho(ctx, clients, window, rate, d, nil); err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	dir, err := os.MkdirTemp("", "chatgate-bench-bolt-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	raw, err := openRawEcho(filepath.Join(dir, "raw.db"))
	if err != nil {
		return nil, err
	}
	b.RawDurableEchoMsgsPerSec, b.RawDurableEchoLatency, b.RawDurableEchoCPUMicros, err = runEcho(ctx, clients, window, rate, d, raw.committer)
	if cerr := raw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("raw durable echo: %w", err)
	}

	st, err := bolt.Open(filepath.Join(dir, "echo.db"), bolt.Options{})
	if err != nil {
		return nil, err
	}
	b.BoltEchoMsgsPerSec, b.BoltEchoLatency, b.BoltEchoCPUMicros, err = runEcho(ctx, clients, window, rate, d, storeCommitter(st))
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bbolt echo: %w", err)
	}
	if rate > 0 {
		return b, nil
	}
	if b.GinReqPerSec, err = runGinHello(ctx, clients, d); err != nil {
		return nil, fmt.Errorf("gin: %w", err)
	}
	return b, nil
}

// committer returns, for one echo connection, what durably records each
// message before it is echoed.
type committer func() func(ctx context.Context, msg []byte) error

// storeCommitter commits each message through chatgate's store as a Post
// does: the conversation record (next seq) and the event, in one batch.
func storeCommitter(st *bolt.Store) committer {
	return func() func(context.Context, []byte) error {
		at := time.Now().UTC()
		visitor := model.VisitorID(model.NewID())
		conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: visitor, State: model.StateOpen,
			Agent: "agent-1", Origin: "bench", CreatedAt: at}
		author := model.Author{Kind: model.AuthorVisitor, ID: string(visitor), Name: "Vera"}
		return func(ctx context.Context, msg []byte) error {
			conv.LastSeq++
			return st.Commit(ctx, &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{{
				Conv: conv.ID, Seq: conv.LastSeq, ID: model.NewID(), Kind: model.KindMessage, Author: author, At: at, Text: string(msg)}}})
		}
	}
}

// rawEcho is the raw durable echo's store: bbolt used directly, one
// writer goroutine that takes the first queued write, drains what else is
// queued (up to 1,024), puts them all in one fsync'd transaction and then
// answers each. Keys are 16 bytes, connection (uint64 BE) ‖ message number
// (uint64 BE), the same shape as an event's (conversation ‖ seq), so the
// B-tree sees the same spread of writes a relay does.
type rawEcho struct {
	db    *bbolt.DB
	reqs  chan rawPut
	done  chan struct{}
	conns atomic.Uint64
}

type rawPut struct {
	key, val []byte
	errc     chan error
}

var rawBucket = []byte("echo")

func openRawEcho(path string) (*rawEcho, error) {
	// Mapped as chatgate's store maps its file (bolt.InitialMmapSize): a
	// growing file is then not remapped, in either.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, FreelistType: bbolt.FreelistMapType,
		InitialMmapSize: bolt.InitialMmapSize})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(rawBucket); return err }); err != nil {
		db.Close()
		return nil, err
	}
	r := &rawEcho{db: db, reqs: make(chan rawPut, 8192), done: make(chan struct{})}
	go r.writer()
	return r, nil
}

func (r *rawEcho) writer() {
	defer close(r.done)
	group := make([]rawPut, 0, 1024)
	for first := range r.reqs {
		group = append(group[:0], first)
	drain:
		for len(group) < cap(group) {
			select {
			case p, ok := <-r.reqs:
				if !ok {
					break drain
				}
				group = append(group, p)
			default:
				break drain
			}
		}
		err := r.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(rawBucket)
			for _, p := range group {
				if err := b.Put(p.key, p.val); err != nil {
					return err
				}
			}
			return nil
		})
		for _, p := range group {
			p.errc <- err
		}
	}
}

func (r *rawEcho) committer() func(context.Context, []byte) error {
	conn := r.conns.Add(1)
	var n uint64
	errc := make(chan error, 1)
	return func(ctx context.Context, msg []byte) error {
		n++
		key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), conn), n)
		select {
		case r.reqs <- rawPut{key: key, val: msg, errc: errc}:
		case <-ctx.Done():
			return ctx.Err()
		}
		return <-errc
	}
}

// close stops the writer once every queued write is answered (the echo
// handlers have returned by then) and closes the file.
func (r *rawEcho) close() error {
	close(r.reqs)
	<-r.done
	return r.db.Close()
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

// runEcho runs a websocket echo server (recording each message durably
// with a committer of newCommit first, when set) and `clients` clients
// keeping `window` messages in flight each, for d; with rate > 0 the
// clients are open-loop instead: together they send rate messages/s on
// schedule (as the bench's visitors do with --rate), whatever the
// answers. It returns echoed messages/s, their round-trip latency and
// the CPU µs per message of this process (server and clients).
func runEcho(ctx context.Context, clients, window int, rate float64, d time.Duration, newCommit committer) (float64, latencySummary, float64, error) {
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
		var commit func(context.Context, []byte) error
		if newCommit != nil {
			commit = newCommit()
		}
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if commit != nil {
				if err := commit(req.Context(), msg); err != nil {
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
		return 0, latencySummary{}, 0, err
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
			return 0, latencySummary{}, 0, err
		}
		conns[i] = c
	}
	cpu0 := readCPU(os.Getpid())
	start := time.Now()
	var wg, senders sync.WaitGroup
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
			inFlight := window
			if rate > 0 {
				// Open loop: a sender on schedule, this goroutine reads.
				inFlight = 0
				pace := openLoopPacer(rate, clients, i)
				senders.Go(func() {
					for pace(ectx) {
						if err := send(); err != nil {
							return // the reader reports a broken connection
						}
					}
				})
			}
			for range inFlight {
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
				if rate > 0 {
					continue
				}
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
	senders.Wait() // each stops at the end of ectx or at its closed socket
	elapsed := time.Since(start)
	cpu := readCPU(os.Getpid()) - cpu0
	close(errs)
	if err := <-errs; err != nil {
		return 0, latencySummary{}, 0, err
	}
	if p := commitErr.Load(); p != nil {
		return 0, latencySummary{}, 0, *p
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return float64(count.Load()) / elapsed.Seconds(), summarize(all), cpuPer(cpu, count.Load()), nil
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
