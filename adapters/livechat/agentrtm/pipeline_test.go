package agentrtm

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/core/model"
)

// TestPipelinedRequests sends many requests about several chats without
// waiting for responses (as an agent app answering many chats does) and
// checks what pipelining must keep: every request answered once and
// correctly, each chat's messages stored and pushed in the order sent,
// every response before the pushes its request caused, and a request that
// is not about one chat (list_chats) answered after everything sent before
// it and before anything sent after it.
func TestPipelinedRequests(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	const chats, per = 4, 30
	var visitors []model.Visitor
	for i := range chats {
		v, _ := h.startChat(t, fmt.Sprintf("V%d", i), "")
		a.Push("incoming_chat")
		visitors = append(visitors, v)
	}
	a.Backlog = nil

	type sent struct {
		chat int // -1: list_chats
		text string
	}
	reqs := map[string]sent{}
	var order []string // request ids in send order
	for m := range per {
		for i, v := range visitors {
			text := fmt.Sprintf("c%d-m%02d", i, m)
			rid := a.Send("send_event", map[string]any{"chat_id": v.ID, "event": map[string]any{"type": "message", "text": text}})
			reqs[rid] = sent{chat: i, text: text}
			order = append(order, rid)
		}
		if m == per/2 {
			rid := a.Send("list_chats", nil)
			reqs[rid] = sent{chat: -1}
			order = append(order, rid)
		}
	}
	// The last chat ends after its messages: had the deactivation
	// overtaken one, that send_event would fail (chat inactive).
	closeRID := a.Send("deactivate_chat", map[string]any{"id": visitors[chats-1].ID})

	answered := map[string]int{} // request id -> position among responses
	var respOrder []string
	lastSeq := make([]int, chats)
	pushed := make([][]string, chats)
	closed := false
	for len(answered) < len(reqs)+1 || !closed {
		f := a.Recv()
		switch {
		case f.Type == "response":
			rid := f.RID()
			if _, dup := answered[rid]; dup {
				t.Fatalf("request %s answered twice", rid)
			}
			if !f.Success {
				t.Fatalf("request %s (%s) failed: %s", rid, f.Action, f.Payload)
			}
			answered[rid] = len(respOrder)
			respOrder = append(respOrder, rid)
			s, ok := reqs[rid]
			if !ok || s.chat < 0 {
				continue
			}
			var se SendEventResponse
			mustUnmarshal(t, f.Payload, &se)
			_, seqText, _ := strings.Cut(se.EventID, "_")
			seq, err := strconv.Atoi(seqText)
			if err != nil || seq <= lastSeq[s.chat] {
				t.Fatalf("chat %d: event id %s after seq %d: not in send order", s.chat, se.EventID, lastSeq[s.chat])
			}
			lastSeq[s.chat] = seq
		case f.Type == "push" && f.Action == "incoming_event":
			var ie IncomingEvent
			mustUnmarshal(t, f.Payload, &ie)
			if _, ok := answered[f.RID()]; !ok {
				t.Fatalf("push of request %s before its response", f.RID())
			}
			if f.RID() == closeRID {
				continue // the closing system message
			}
			s, ok := reqs[f.RID()]
			if !ok {
				t.Fatalf("incoming_event with unknown request_id %q", f.RID())
			}
			if ie.Event.Text != s.text {
				t.Fatalf("push of request %s carries %q, want %q", f.RID(), ie.Event.Text, s.text)
			}
			pushed[s.chat] = append(pushed[s.chat], ie.Event.Text)
		case f.Type == "push" && f.Action == "chat_deactivated":
			if _, ok := answered[closeRID]; !ok {
				t.Fatal("chat_deactivated before the deactivate_chat response")
			}
			closed = true
		}
	}
	for i := range chats {
		for m, text := range pushed[i] {
			if want := fmt.Sprintf("c%d-m%02d", i, m); text != want {
				t.Fatalf("chat %d: push %d is %q, want %q", i, m, text, want)
			}
		}
	}
	// list_chats is served alone: after every earlier request, before
	// every later one.
	var barrier string
	for _, rid := range order {
		if reqs[rid].chat < 0 {
			barrier = rid
		}
	}
	before := true
	for _, rid := range order {
		if rid == barrier {
			before = false
			continue
		}
		if before != (answered[rid] < answered[barrier]) {
			t.Fatalf("request %s answered on the wrong side of list_chats %s", rid, barrier)
		}
	}
}

func TestOrderKey(t *testing.T) {
	h := newHarness(t, nil)
	c := h.surf.newClient("3.5", func([]byte) error { return nil }, func(string) {})
	for frame, want := range map[string]string{
		`{"request_id":"1","action":"send_event","payload":{"chat_id":"C1","event":{}}}`: "chat:C1",
		`{"request_id":"1","action":"deactivate_chat","payload":{"id":"C1"}}`:            "chat:C1",
		`{"action":"mark_events_as_seen","payload":{"chat_id":"C2"}}`:                    "chat:C2",
		`{"action":"ping"}`: "ping",
		`{"action":"send_event","payload":{"event":{}}}`:   "",
		`{"action":"list_chats"}`:                          "",
		`{"action":"transfer_chat","payload":{"id":"C1"}}`: "",
		`{"action":"logout"}`:                              "",
		`not json`:                                         "",
		`{"action":"send_event","payload":{"chat_id":7}}`:  "",
	} {
		if got := c.OrderKey([]byte(frame)); got != want {
			t.Errorf("OrderKey(%s) = %q, want %q", frame, got, want)
		}
	}
}

// BenchmarkAgentSendEvents: one agent connection answers a message in
// each of 32 chats without waiting for responses (as an agent app serving
// many chats does), on a store that fsyncs every commit. One at a time
// (in_flight=1) the connection gets one response per commit; pipelined,
// the requests of different chats share commits. b.N is the number of
// send_event requests; msgs/s is their rate.
func BenchmarkAgentSendEvents(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("in_flight=%d", n), func(b *testing.B) {
			h := newHarness(b, func(c *Config) { c.InFlight = n })
			const chats = 32
			var ids []string
			for i := range chats {
				v, _ := h.startChat(b, fmt.Sprintf("B%d", i), "")
				ids = append(ids, string(v.ID))
			}
			ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+"/v3.5/agent/rtm/ws", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer ws.Close()
			if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"request_id":"login","action":"login","payload":{"token":"Bearer tok-alice"}}`)); err != nil {
				b.Fatal(err)
			}
			for {
				var f frame
				if err := ws.ReadJSON(&f); err != nil {
					b.Fatal(err)
				}
				if f.Type == "response" && f.RID() == "login" {
					break
				}
			}
			b.ResetTimer()
			start := time.Now()
			werr := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					msg := fmt.Sprintf(`{"request_id":"r%d","action":"send_event","payload":{"chat_id":%q,"event":{"type":"message","text":"m%d"}}}`, i, ids[i%chats], i)
					if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
						werr <- err
						return
					}
				}
				werr <- nil
			}()
			for got := 0; got < b.N; {
				var f frame
				if err := ws.ReadJSON(&f); err != nil {
					b.Fatal(err)
				}
				if f.Type != "response" {
					continue
				}
				if !f.Success {
					b.Fatalf("%s failed: %s", f.RID(), f.Payload)
				}
				got++
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if err := <-werr; err != nil {
				b.Fatal(err)
			}
		})
	}
}
