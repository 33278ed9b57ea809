package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/adapters/livechat/rtmconn"
	"chatgate/adapters/livechat/wire"
)

// rtmFrame is a LiveChat RTM frame (agent or customer), either way.
type rtmFrame struct {
	RequestID string          `json:"request_id,omitempty"`
	Action    string          `json:"action"`
	Type      string          `json:"type,omitempty"`
	Success   *bool           `json:"success,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

type rtmEventPayload struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	Event    struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		AuthorID string `json:"author_id"`
	} `json:"event"`
}

// rtmEventFrame is an incoming_event push decoded in one pass.
type rtmEventFrame struct {
	Action  string          `json:"action"`
	Type    string          `json:"type,omitempty"`
	Payload rtmEventPayload `json:"payload"`
}

// rtmWorth reports whether a bench client must decode a frame: a failed
// response, a push of one of the actions listed, or an event whose text
// starts with the bench prefix the client waits for. Every other frame
// (the response to its own send, the echo of its own event, which LiveChat
// sends too) it skips undecoded: decoding each of the three frames a
// client sees per message, twice (envelope, then payload), was a tenth
// of an in-process run's CPU, a cost the raw echo's clients do not pay and
// that says nothing about the gateway. The gateway writes compact JSON
// (encoding/json), so these byte patterns are exact.
func rtmWorth(b []byte, textPrefix string, actions ...string) bool {
	if bytes.Contains(b, []byte(`"success":false`)) || bytes.Contains(b, []byte(`"text":"`+textPrefix+`|`)) {
		return true
	}
	for _, a := range actions {
		if bytes.Contains(b, []byte(`"action":"`+a+`"`)) {
			return true
		}
	}
	return false
}

// decodeRTMPush decodes a frame rtmWorth let through: an incoming_event
// push comes back as p (one pass); anything else as f, the envelope with
// its raw payload (a failed response, a chat's end); err if it is not
// JSON. It decodes as the gateway decodes its clients' frames
// (wire.Unmarshal: encoding/json's validity check, goccy's decoder), so
// that an in-process run does not spend on the load generator's JSON what
// the gateway no longer spends on its own.
func decodeRTMPush(b []byte) (p *rtmEventPayload, f rtmFrame, err error) {
	if !bytes.Contains(b, []byte(`"success":false`)) {
		var ef rtmEventFrame
		if wire.Unmarshal(b, &ef) == nil && ef.Action == "incoming_event" && ef.Type != "response" {
			return &ef.Payload, f, nil
		}
	}
	err = wire.Unmarshal(b, &f)
	return nil, f, err
}

type rtmSendEvent struct {
	RequestID string `json:"request_id"`
	Action    string `json:"action"`
	Payload   struct {
		ChatID string `json:"chat_id"`
		Event  struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"event"`
	} `json:"payload"`
}

func sendEventFrame(rid, chatID, text string) []byte {
	var f rtmSendEvent
	f.RequestID, f.Action = rid, "send_event"
	f.Payload.ChatID = chatID
	f.Payload.Event.Type, f.Payload.Event.Text = "message", text
	b, _ := json.Marshal(f)
	return b
}

// frameReader reads a socket's messages into one buffer it reuses: the
// frame it returns is valid until the next call. gorilla's ReadMessage
// (io.ReadAll) allocated a fresh, grown buffer per frame, 7 % of the bytes
// an in-process customer run allocated; the LiveChat RTM clients decode
// what they keep (wire.Unmarshal copies its input) before the next read.
type frameReader struct {
	conn *websocket.Conn
	buf  bytes.Buffer
}

func (r *frameReader) next() ([]byte, error) {
	_, rd, err := r.conn.NextReader()
	if err != nil {
		return nil, err
	}
	r.buf.Reset()
	if _, err := r.buf.ReadFrom(rd); err != nil {
		return nil, err
	}
	return r.buf.Bytes(), nil
}

// rtmCall writes a request and reads frames until its response; pushes
// before it are skipped. Only for set-up, before a reader runs.
func rtmCall(conn *websocket.Conn, rid, action string, payload any) (json.RawMessage, error) {
	b, err := json.Marshal(map[string]any{"request_id": rid, "action": action, "payload": payload})
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(15 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	defer conn.SetWriteDeadline(time.Time{})
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		var f rtmFrame
		if json.Unmarshal(msg, &f) != nil || f.Type != "response" || f.RequestID != rid {
			continue
		}
		if f.Success == nil || !*f.Success {
			return nil, fmt.Errorf("%s: %.300s", action, f.Payload)
		}
		return f.Payload, nil
	}
}

// benchAgent is one LiveChat agent RTM session that answers every bench
// message of the chats it claims.
type benchAgent struct {
	id   string
	conn *websocket.Conn
	out  chan []byte
	lat  []time.Duration // visitor→agent, owned by run
	once sync.Once
}

// benchAgentBatch bounds how many queued answers a bench agent writes in
// one system call.
const benchAgentBatch = 64

var benchDialer = &websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}

func dialBenchAgent(ctx context.Context, base, token string) (*benchAgent, error) {
	conn, _, err := rtmconn.DialBatched(ctx, benchDialer, base+"/v3.5/agent/rtm/ws", nil)
	if err != nil {
		return nil, err
	}
	p, err := rtmCall(conn, "login", "login", map[string]any{"token": "Bearer " + token})
	if err != nil {
		conn.Close()
		return nil, err
	}
	var login struct {
		MyProfile struct {
			ID string `json:"id"`
		} `json:"my_profile"`
	}
	if err := json.Unmarshal(p, &login); err != nil || login.MyProfile.ID == "" {
		conn.Close()
		return nil, fmt.Errorf("login: no my_profile.id in %.200s", p)
	}
	return &benchAgent{id: login.MyProfile.ID, conn: conn, out: make(chan []byte, 8192)}, nil
}

func (a *benchAgent) close() { a.once.Do(func() { a.conn.Close() }) }

// run reads pushes and answers until ctx ends.
func (a *benchAgent) run(ctx context.Context, r *benchRun) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { // the one writer; pings keep the session alive
		ping := time.NewTicker(15 * time.Second)
		defer ping.Stop()
		batch := make([][]byte, 0, benchAgentBatch)
		for {
			var b []byte
			select {
			case <-wctx.Done():
				return
			case b = <-a.out:
			case <-ping.C:
				b = []byte(`{"request_id":"ping","action":"ping"}`)
			}
			// The answers already queued behind b leave with it, in one
			// write(2): nothing waits for a batch to fill.
			batch = append(batch[:0], b)
		more:
			for len(batch) < benchAgentBatch {
				select {
				case b = <-a.out:
					batch = append(batch, b)
				default:
					break more
				}
			}
			if err := rtmconn.WriteBatch(a.conn, batch); err != nil {
				r.fail(wctx, fmt.Errorf("agent %s write: %w", a.id, err))
				a.close()
				return
			}
		}
	})
	wg.Go(func() {
		<-wctx.Done()
		a.close()
	})
	var n int64
	rd := frameReader{conn: a.conn}
	for {
		msg, err := rd.next()
		if err != nil {
			if !errors.Is(err, websocket.ErrCloseSent) {
				r.fail(ctx, fmt.Errorf("agent %s read: %w", a.id, err))
			}
			return
		}
		if !rtmWorth(msg, "bench") {
			continue
		}
		p, f, err := decodeRTMPush(msg)
		switch {
		case err != nil:
			r.fail(ctx, fmt.Errorf("agent %s: bad frame: %w", a.id, err))
		case f.Type == "response":
			if f.Success != nil && !*f.Success {
				r.fail(ctx, fmt.Errorf("agent %s %s: %.200s", a.id, f.Action, f.Payload))
			}
		case p != nil:
			if p.Event.Type != "message" || p.Event.AuthorID == a.id {
				continue
			}
			v, seq, sent, ok := parseBenchText("bench", p.Event.Text)
			if !ok {
				continue
			}
			if owner, _ := r.claims.LoadOrStore(p.ChatID, a); owner != a {
				continue // another session of the same agent answers this chat
			}
			a.lat = append(a.lat, time.Since(sent))
			r.v2a.Add(1)
			n++
			frame := sendEventFrame("a"+strconv.FormatInt(n, 10), p.ChatID,
				"ack|"+strconv.Itoa(v)+"|"+strconv.FormatInt(seq, 10)+"|"+strconv.FormatInt(time.Now().UnixNano(), 10))
			select {
			case a.out <- frame:
			case <-ctx.Done():
				return
			}
		}
	}
}
