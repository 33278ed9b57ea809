package rocketchat

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// benchMessages returns the environment and a visitor's and an agent's
// message in one room, as the bench relays them.
func benchMessages(b testing.TB) (*ddpEnv, model.Event, model.Event) {
	env := newDDPEnv(b, nil)
	env.online("amy@x")
	v := env.visitor("bench-token", "Bench Visitor 1")
	c := env.room(v)
	ve, err := env.s.postVisitorMessage(context.Background(), v, c, "", "bench|1|1|1733490000000000000", nil)
	if err != nil {
		b.Fatal(err)
	}
	ae, _, err := env.d.Post(context.Background(), desk.PostRequest{Conv: c.ID,
		Author: model.Author{Kind: model.AuthorAgent, ID: "amy@x"}, Draft: desk.Draft{Text: "ack|1|1|1733490000000000000"}})
	if err != nil {
		b.Fatal(err)
	}
	return env, ve, ae
}

// reportCPU reports the process's CPU time per operation (user and
// system, every goroutine: the collector's work too) as cpu-ns/op: on a
// machine shared with other work, ns/op is wall time and moves with the
// load, CPU time much less. Call it after the loop, with the CPU time
// cpuTime returned before it.
func reportCPU(b *testing.B, before int64) {
	b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkStreamMessageFrame is what one DDP feed does with a notice of
// one new message: render it and encode its stream-room-messages frame.
func BenchmarkStreamMessageFrame(b *testing.B) {
	env, ve, ae := benchMessages(b)
	sub := &ddpSub{id: "s1", stream: streamRoomMessages, event: string(ve.Conv), kind: subMessages, conv: ve.Conv}
	for _, tc := range []struct {
		name string
		e    model.Event
	}{{"visitor", ve}, {"agent", ae}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				r := ddpNoticeRender{s: env.s, n: hub.Notice{Conv: model.Conversation{ID: tc.e.Conv}, Events: []model.Event{tc.e}}}
				if fr := r.framesFor(sub); len(fr) != 1 {
					b.Fatalf("%d frames", len(fr))
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkRESTMessageResponse is the body of POST livechat/message's
// answer: the sent message rendered for REST.
func BenchmarkRESTMessageResponse(b *testing.B) {
	env, ve, _ := benchMessages(b)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		out, err := restBody(map[string]any{"message": env.s.renderMessage(&ve), "success": true})
		if err != nil || len(out) == 0 {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkRESTMessageSend is POST livechat/message through the surface's
// router, as the widget sends it: body, visitor and room checks, the
// desk's Post (bbolt without fsync), the answer. The network and the
// gateway's own middlewares are left out.
func BenchmarkRESTMessageSend(b *testing.B) {
	env := newDDPEnv(b, nil)
	env.online("amy@x")
	v := env.visitor("bench-token", "Bench Visitor 1")
	c := env.room(v)
	rid := env.s.roomID(context.Background(), c.ID)
	e := gin.New()
	env.s.Mount(e)
	b.ReportAllocs()
	cpu := cpuTime()
	n := 0
	for b.Loop() {
		n++
		body := `{"token":"bench-token","rid":"` + rid + `","msg":"bench|1|` + strconv.Itoa(n) + `|1733490000000000000"}`
		req := httptest.NewRequest(http.MethodPost, "/api/v1/livechat/message", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.HasSuffix(w.Body.Bytes(), []byte(`,"success":true}`)) {
			b.Fatalf("%d %s", w.Code, w.Body.Bytes())
		}
	}
	reportCPU(b, cpu)
}
