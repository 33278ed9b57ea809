package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestV2Conn: the v2 load client's requests are what a v2 client sends
// (form-encoded POST, query-string GET, X-API-Version: 2), answers come
// back whole, a non-200 is an error, and a connection the server closes
// is dialled again.
func TestV2Conn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Header.Get("X-API-Version") != "2" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.Form.Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		if r.Form.Get("fail") != "" {
			http.Error(w, `{"error":"no"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.Form.Get("message") + r.Form.Get("q")))
	}))
	defer srv.Close()
	c, err := newV2Conn(context.Background(), srv.URL+"/visitors/v/chat/")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	cases := []struct {
		method, tail, form, want string
		wantErr                  bool
	}{
		{"POST", "send_message", "licence_id=1&message=a%7Cb+c", "POST /visitors/v/chat/send_message a|b c", false},
		{"GET", "get_pending_messages?q=x%20y", "", "GET /visitors/v/chat/get_pending_messages x y", false},
		{"GET", "get_pending_messages?close=1&q=1", "", "GET /visitors/v/chat/get_pending_messages 1", false},
		{"GET", "get_pending_messages?q=2", "", "GET /visitors/v/chat/get_pending_messages 2", false},
		{"POST", "send_message", "fail=1", "", true},
		{"POST", "send_message", "message=again", "POST /visitors/v/chat/send_message again", false},
	}
	for _, tc := range cases {
		got, err := c.do(tc.method, tc.tail, tc.form)
		if (err != nil) != tc.wantErr || (!tc.wantErr && strings.TrimSpace(string(got)) != tc.want) {
			t.Fatalf("%s %s: %q, %v; want %q (error %v)", tc.method, tc.tail, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestRCVisitorSend: the Rocket.Chat load client posts livechat/message
// as the widget does (a JSON body with token, rid and msg) over its own
// connection, and only an answer that says success counts as sent.
func TestRCVisitorSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in rcSend
		if r.URL.Path != "/api/v1/livechat/message" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&in) != nil || in.Token != "tok" || in.RID != "room" {
			http.Error(w, `{"success":false}`, http.StatusBadRequest)
			return
		}
		switch in.Msg {
		case "ok":
			_, _ = w.Write([]byte(`{"message":{"msg":"ok"},"success":true}`))
		case "spaced": // valid, but not as chatgate writes it: decoded
			_, _ = w.Write([]byte(`{"success": true, "message": {}}`))
		case "false":
			_, _ = w.Write([]byte(`{"message":{},"success":false}`))
		case "garbage":
			_, _ = w.Write([]byte(`not json`))
		}
	}))
	defer srv.Close()
	hc, err := newHTTPConn(context.Background(), srv.URL+"/api/v1/livechat/", "", "application/json")
	if err != nil {
		t.Fatal(err)
	}
	defer hc.close()
	v := &rcVisitor{token: "tok", rid: "room"}
	for _, tc := range []struct {
		msg     string
		wantErr bool
	}{{"ok", false}, {"spaced", false}, {"false", true}, {"garbage", true}, {"ok", false}} {
		if err := v.send(hc, tc.msg); (err != nil) != tc.wantErr {
			t.Errorf("send %q: %v, want error %v", tc.msg, err, tc.wantErr)
		}
	}
	bad := &rcVisitor{token: "other", rid: "room"}
	if err := bad.send(hc, "ok"); err == nil {
		t.Error("a 400 answer counted as sent")
	}
}

// TestRCVisitorSendDDP: with --rocketchat-send ddp the Rocket.Chat load
// client sends each message as the older livechat clients do, with the
// sendMessageLivechat method on its DDP websocket ({_id of 17 Random.id
// characters, rid, msg, token}, one call at a time), and counts a message
// sent only when its result comes back without an error; a late result
// of another call is not taken for the awaited one. No REST request is
// made.
func TestRCVisitorSendDDP(t *testing.T) {
	const calls = 6 // the last one is answered with an error
	type seen struct {
		ID     string `json:"id"`
		Method string `json:"method"`
		Params []struct {
			ID    string `json:"_id"`
			Token string `json:"token"`
			RID   string `json:"rid"`
			Msg   string `json:"msg"`
		} `json:"params"`
	}
	got := make(chan seen, calls+1)
	var rest atomic.Int64
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/websocket" {
			rest.Add(1)
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		c, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer c.Close()
		send := func(s string) { _ = c.WriteMessage(websocket.TextMessage, []byte(s)) }
		send(`{"msg":"ping"}`) // answered with a pong while calls are in flight
		for n := 0; ; {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var f seen
			if json.Unmarshal(b, &f) != nil || f.Method == "" {
				continue // the pong
			}
			n++
			if n > calls {
				continue // unanswered: the loop waits for it until cancelled
			}
			got <- f
			if n == calls {
				send(`{"msg":"result","id":"` + f.ID + `","error":{"isClientSafe":true,"error":"invalid-token","reason":"invalid-token","errorType":"Meteor.Error"}}`)
				continue
			}
			// A stale result first: it must not complete this call.
			send(`{"msg":"result","id":"stale","result":{}}`)
			send(`{"msg":"updated","methods":["` + f.ID + `"]}`)
			send(`{"msg":"result","id":"` + f.ID + `","result":{"_id":"` + f.Params[0].ID + `","msg":"` + f.Params[0].Msg + `"}}`)
			// The agent's answer frees the window for the next message.
			_, seq, _, _ := parseBenchText("bench", f.Params[0].Msg)
			send(`{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"room","args":[{"msg":"ack|0|` +
				strconv.FormatInt(seq, 10) + `|` + strconv.FormatInt(time.Now().UnixNano(), 10) + `"}]}}`)
		}
	}))
	defer srv.Close()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := newHTTPConn(context.Background(), srv.URL+"/api/v1/livechat/", "", "application/json")
	if err != nil {
		t.Fatal(err)
	}
	r := &benchRun{o: benchOptions{Window: 1, RocketChatSend: "ddp"}}
	v := &rcVisitor{token: "tok", rid: "room", conn: conn, http: hc, ddpSend: true}
	ctx, cancel := context.WithCancel(context.Background())
	var lat []time.Duration
	finished := make(chan struct{})
	go func() { defer close(finished); lat = v.loop(ctx, r) }()
	ids := map[string]bool{}
	for n := 1; n <= calls; n++ {
		select {
		case f := <-got:
			if f.Method != "sendMessageLivechat" || f.ID != strconv.Itoa(n) || len(f.Params) != 1 {
				t.Fatalf("call %d: %+v", n, f)
			}
			p := f.Params[0]
			if len(p.ID) != 17 || ids[p.ID] || p.Token != "tok" || p.RID != "room" || !strings.HasPrefix(p.Msg, "bench|0|"+strconv.Itoa(n)+"|") {
				t.Fatalf("call %d params: %+v", n, p)
			}
			ids[p.ID] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never came", n)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); r.errs.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-finished
	if s, e, a := r.sent.Load(), r.errs.Load(), r.a2v.Load(); s != calls-1 || e != 1 || a != calls-1 || len(lat) != calls-1 {
		t.Fatalf("sent %d, errors %d (%v), answers %d, latencies %d; want %d, 1, %d, %d", s, e, r.samples, a, len(lat), calls-1, calls-1, calls-1)
	}
	if !strings.Contains(r.samples[0], "invalid-token") {
		t.Errorf("error sample: %v", r.samples)
	}
	if n := rest.Load(); n != 0 {
		t.Errorf("%d REST requests", n)
	}
}
