package visitorv2

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkIdlePoll measures the server side of a get_pending_messages
// poll that finds nothing new (most of a v2 visitor's requests), without
// the network: what `chatgate bench` compares with gin's hello-world.
func BenchmarkIdlePoll(b *testing.B) {
	h := newHarness(b, time.Hour)
	sid := h.start("vb")
	msgs := h.poll("vb", sid, "")
	q := url.Values{"licence_id": {lic}, "secured_session_id": {sid}, "last_message_id": {"99"}}
	target := "/visitors/vb/chat/get_pending_messages?" + q.Encode()
	handler := h.srv.Config.Handler
	if len(msgs) == 0 {
		b.Fatal("no welcome message")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("X-API-Version", "2")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("poll: %d %s", rec.Code, rec.Body)
		}
	}
}
