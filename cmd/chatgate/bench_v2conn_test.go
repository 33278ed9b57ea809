package main

import (
	"context"
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
