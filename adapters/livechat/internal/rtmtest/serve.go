package rtmtest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// Surface is what Serve runs: a LiveChat surface (agent or customer).
type Surface interface {
	Run(ctx context.Context) error
	Mount(r gin.IRouter)
}

// Serve runs surf and serves its routes on an httptest server
// (127.0.0.1) until the test ends. stop stops the surface early: it is
// idempotent and waits for Run, failing the test if Run failed. Cleanups
// run last-in first-out, so the surface stops (closing every session)
// before the server closes, and both before whatever the caller
// registered earlier (its desk and store).
func Serve(t testing.TB, surf Surface) (srv *httptest.Server, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- surf.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-runDone; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	r := gin.New()
	surf.Mount(r)
	srv = httptest.NewServer(r)
	t.Cleanup(srv.Close)
	t.Cleanup(stop)
	return srv, stop
}

// Counter adds up a surface's OnConnections reports: the sockets open now.
type Counter struct {
	mu sync.Mutex
	n  int
}

// Add is the OnConnections callback.
func (c *Counter) Add(delta int) {
	c.mu.Lock()
	c.n += delta
	c.mu.Unlock()
}

// N is the number of sockets open.
func (c *Counter) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
