package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
