package rocketchat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzRESTRequest sends arbitrary methods, paths, content types and bodies
// to the REST routes of a live surface on a real desk: whatever arrives,
// the server never panics and every answer under /api/v1 is a JSON object
// with a 2xx, 4xx or 413 status (never a 5xx).
func FuzzRESTRequest(f *testing.F) {
	h := newRH(f)
	h.online("cid@x")
	h.visitor("tok-fuzz", "Fuzz")
	rid := h.room("tok-fuzz")
	seeds := []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/livechat/message", "application/json", `{"token":"tok-fuzz","rid":"` + rid + `","msg":"hi","_id":"m1"}`},
		{"GET", "/api/v1/livechat/messages.history/" + rid + "?token=tok-fuzz&limit=-1", "", ""},
		{"POST", "/api/v1/livechat/visitor", "application/json", `{"visitor":{"token":"t2","name":{"x":1},"customFields":[{"key":1}]}}`},
		{"PUT", "/api/v1/livechat/message/m1", "application/json", `{"token":"tok-fuzz","rid":"` + rid + `","msg":""}`},
		{"POST", "/api/v1/livechat/room.close", "application/x-www-form-urlencoded", "token=tok-fuzz&rid=%zz"},
		{"DELETE", "/api/v1/livechat/visitor/../../x", "application/json", "[]"},
		{"POST", "/api/v1/login", "application/json", `{"user":"cid","password":123}`},
		{"POST", "/api/v1/livechat/upload/" + rid, "multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{"POST", "/api/v1/livechat/visitor/department.transfer", "application/json", `{"token":"tok-fuzz","rid":"` + rid + `","department":{"$ne":1}}`},
		{"POST", "/api/v1/livechat/custom.field", "application/json", `{"token":"tok-fuzz","key":"customerId","value":"(((","overwrite":true}`},
		{"POST", "/api/v1/livechat/custom.fields", "application/json", `{"token":"tok-fuzz","customFields":[{"key":"orderRef","value":"ORD-1","overwrite":false}]}`},
		{"POST", "/api/v1/livechat/transcript", "application/json", `{"token":"tok-fuzz","rid":"` + rid + `","email":"a@b"}`},
		{"GET", "/api/v1/livechat/room?token=tok-fuzz&rid=a%2Fb", "", ""},
		{"GET", "/api/v1/livechat/custom-fields?offset=-5&count=999999&text=%5B", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, []byte(s.body))
	}
	client := &http.Client{}
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/api/v1/") || strings.ContainsAny(path, " \r\n#\x00") || len(path) > 2048 {
			t.Skip()
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
		default:
			t.Skip()
		}
		req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		for _, r := range ctype {
			if r < 0x20 || r > 0x7e {
				t.Skip() // not a header value a client can send
			}
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s: status %d %s", method, path, resp.StatusCode, raw)
		}
		var m map[string]any
		if method != "OPTIONS" && (json.Unmarshal(raw, &m) != nil || m == nil) {
			t.Fatalf("%s %s: %d body %q is not a JSON object", method, path, resp.StatusCode, raw)
		}
	})
}
