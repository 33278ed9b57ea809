package wire

import "testing"

// benchSendEvent is the frame a customer or an agent sends per message.
var benchSendEvent = []byte(`{"request_id":"1234567","action":"send_event","payload":{"chat_id":"01JEXAMPLEVISITOR000000000","event":{"type":"message","text":"bench|17|123|1733490000000000000","visibility":"all"}}}`)

// BenchmarkDecodeSendEvent: envelope and payload of one send_event frame,
// as rtmconn.Handle and the send_event action (DecodeEventPayload) decode them.
func BenchmarkDecodeSendEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		req, werr := DecodeRequest(benchSendEvent)
		if werr != nil {
			b.Fatal(werr)
		}
		var p struct {
			ChatID             string   `json:"chat_id"`
			Event              *EventIn `json:"event"`
			AttachToLastThread bool     `json:"attach_to_last_thread"`
		}
		if err := DecodeEventPayload(req, &p); err != nil || p.Event == nil {
			b.Fatal(err)
		}
	}
}

// benchPush is the incoming_event push every relayed message causes.
var benchPush = NewPush("3.5", "1234567", "incoming_event", IncomingEvent{ChatID: "01JEXAMPLEVISITOR000000000", ThreadID: "01JEXAMPLETHREAD0000000000",
	Event: Event{ID: "01JEXAMPLETHREAD0000000000_17", Type: "message", AuthorID: "01JEXAMPLEVISITOR000000000",
		CreatedAt: "2026-12-06T13:00:00.123456Z", Visibility: "all", Text: "bench|17|123|1733490000000000000"}})

func BenchmarkEncodePush(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodePush(&benchPush); err != nil {
			b.Fatal(err)
		}
	}
}
