package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

func TestDecodeRequest(t *testing.T) {
	cases := []struct {
		in      string
		ok      bool
		rid     string
		action  string
		payload string
	}{
		{`{"request_id":"a","action":"ping"}`, true, "a", "ping", ""},
		{`{"action":"ping","payload":null}`, true, "", "ping", ""},
		{` {"request_id":"b","action":"x","payload":{"k":1},"version":"3.5"} `, true, "b", "x", `{"k":1}`},
		{`{"request_id":"c","action":"x","payload":[1]}`, false, "c", "x", ""},
		{`{"request_id":"d"}`, false, "d", "", ""},
		{`{"request_id":1,"action":"ping"}`, false, "", "", ""},
		{`{"request_id":"e","action":["ping"]}`, false, "e", "", ""},
		{`{"request_id":`, false, "", "", ""},
		{`[]`, false, "", "", ""},
		{``, false, "", "", ""},
	}
	for _, tc := range cases {
		req, err := DecodeRequest([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.in, err)
			continue
		}
		if err != nil && err.Type != Validation {
			t.Errorf("%s: error type %s", tc.in, err.Type)
		}
		if req.RequestID != tc.rid || req.Action != tc.action || string(req.Payload) != tc.payload {
			t.Errorf("%s: got %+v", tc.in, req)
		}
	}
}

func TestDecodePayloadNamesField(t *testing.T) {
	var p struct {
		Limit int `json:"limit"`
	}
	err := DecodePayload(&Request{Payload: json.RawMessage(`{"limit":"ten"}`)}, &p)
	var we *Error
	if !errors.As(err, &we) || we.Type != Validation || !strings.Contains(we.Message, "limit must be a number") {
		t.Fatalf("err = %v", err)
	}
}

func TestFrames(t *testing.T) {
	req := &Request{RequestID: "r1", Action: "send_event"}
	b, err := Encode(OK(req, map[string]string{"event_id": "T_1"}))
	if err != nil || string(b) != `{"request_id":"r1","action":"send_event","type":"response","success":true,"payload":{"event_id":"T_1"}}` {
		t.Fatalf("ok frame %s, %v", b, err)
	}
	b, _ = Encode(OK(&Request{Action: "ping"}, nil))
	if string(b) != `{"request_id":"","action":"ping","type":"response","success":true,"payload":{}}` {
		t.Fatalf("empty ok frame %s", b)
	}
	b, _ = Encode(Fail(req, NewError(ChatInactive)))
	if string(b) != `{"request_id":"r1","action":"send_event","type":"response","success":false,"payload":{"error":{"type":"chat_inactive","message":"Chat is inactive"}}}` {
		t.Fatalf("error frame %s", b)
	}
	b, _ = Encode(NewPush("3.5", "", "incoming_event", Empty{}))
	if string(b) != `{"version":"3.5","action":"incoming_event","type":"push","payload":{}}` {
		t.Fatalf("push frame %s", b)
	}
	b, _ = Encode(OK(req, map[string]string{"text": "<b>&</b>"}))
	if !strings.Contains(string(b), "<b>&</b>") {
		t.Fatalf("HTML escaped: %s", b)
	}
}

func TestFromError(t *testing.T) {
	cases := []struct {
		err  error
		want ErrorType
	}{
		{fmt.Errorf("conversation x: %w", desk.ErrNotFound), NotFound},
		{store.ErrNotFound, NotFound},
		{desk.ErrInactive, ChatInactive},
		{fmt.Errorf("%w: empty message", desk.ErrInvalid), Validation},
		{fmt.Errorf("%w: text is 300 bytes", desk.ErrTooLarge), Validation},
		{desk.ErrForbidden, Authorization},
		{context.DeadlineExceeded, RequestTimeout},
		{Errorf(Authentication, "x"), Authentication},
		{errors.New("disk on fire"), Internal},
	}
	for _, tc := range cases {
		got, _ := FromError(tc.err)
		if got.Type != tc.want {
			t.Errorf("%v → %s, want %s", tc.err, got.Type, tc.want)
		}
		if tc.want == Internal && strings.Contains(got.Message, "disk") {
			t.Errorf("internal error leaks its cause: %q", got.Message)
		}
	}
}

func TestDispatch(t *testing.T) {
	tbl := Table[int]{
		"open":  {Public: true, Handle: func(context.Context, int, *Request) (any, error) { return nil, nil }},
		"shut":  {Handle: func(context.Context, int, *Request) (any, error) { return "x", nil }},
		"panic": {Public: true, Handle: func(context.Context, int, *Request) (any, error) { panic("boom") }},
	}
	var logged []error
	onErr := func(err error) { logged = append(logged, err) }
	check := func(action string, authed, success bool, typ ErrorType) {
		t.Helper()
		r := tbl.Dispatch(context.Background(), 0, authed, &Request{Action: action}, onErr)
		if r.Success != success {
			t.Fatalf("%s: success %v", action, r.Success)
		}
		if !success {
			if e := r.Payload.(errorPayload).Error; e.Type != typ {
				t.Fatalf("%s: error %s, want %s", action, e.Type, typ)
			}
		}
	}
	check("open", false, true, "")
	check("shut", false, false, Authentication)
	check("shut", true, true, "")
	check("nope", true, false, Validation)
	check("panic", false, false, Internal)
	if len(logged) != 1 {
		t.Fatalf("logged %v", logged)
	}
	if names := tbl.Names(); strings.Join(names, ",") != "open,panic,shut" {
		t.Fatalf("names %v", names)
	}
}

func TestRenderEvent(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	msg := model.Event{Conv: "T1", Seq: 3, Kind: model.KindMessage, Text: "hi", ClientKey: "c",
		Author: model.Author{Kind: model.AuthorAgent, ID: "a@x"}, At: at}
	e := RenderEvent(&msg)
	if e.ID != "T1_3" || e.Type != "message" || e.Text != "hi" || e.CustomID != "c" || e.AuthorID != "a@x" ||
		e.CreatedAt != "2024-05-06T07:08:09.123456Z" || e.Visibility != "all" {
		t.Fatalf("message: %+v", e)
	}
	closed := model.Event{Conv: "T1", Seq: 4, Kind: model.KindSystem, Subtype: model.SysClosed, Text: "Chat closed",
		Author: model.System, At: at, Vars: map[string]string{"by_kind": "visitor"}}
	e = RenderEvent(&closed)
	if e.Type != "system_message" || e.SystemMessageType != "manual_archived_customer" || e.AuthorID != "" {
		t.Fatalf("system: %+v", e)
	}
	custom := model.Event{Conv: "T1", Seq: 5, Kind: model.KindCustom, At: at, Visibility: model.VisibleAgents}
	e = RenderEvent(&custom)
	if string(e.Content) != "{}" || Visible(&custom, ForCustomer) || !Visible(&custom, ForAgent) {
		t.Fatalf("custom: %+v", e)
	}
	if c, s, ok := ParseEventID("K_P_12"); !ok || c != "K_P" || s != 12 {
		t.Fatalf("ParseEventID = %s %d %v", c, s, ok)
	}
	if _, _, ok := ParseEventID("K_0"); ok {
		t.Fatal("seq 0 accepted")
	}
	if GroupID("") != 0 || GroupID("7") != 7 || GroupID("sales") == 0 || GroupID("sales") != GroupID("sales") {
		t.Fatal("GroupID")
	}
}

func TestRenderChat(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 1, 0, 0, time.UTC)
	d := ChatData{
		Visitor: model.Visitor{ID: "V", Name: "Tom", Fields: map[string]string{"b": "2", "a": "1"}},
		Conv:    model.Conversation{ID: "T", Visitor: "V", State: model.StateQueued, CreatedAt: now.Add(-time.Minute)},
		Events: []model.Event{
			{Conv: "T", Seq: 1, Kind: model.KindMessage, Text: "hi", Author: model.Author{Kind: model.AuthorVisitor, ID: "V"}},
			{Conv: "T", Seq: 2, Kind: model.KindMessage, Text: "note", Visibility: model.VisibleAgents,
				Author: model.Author{Kind: model.AuthorAgent, ID: "a@x"}},
		},
		QueuePos: 2, Now: now,
	}
	c := RenderChat(&d, ForCustomer)
	if len(c.Thread.Events) != 1 || c.Thread.Queue == nil || c.Thread.Queue.Position != 2 || c.Thread.Queue.WaitTime != 60 {
		t.Fatalf("customer chat: %+v", c.Thread)
	}
	if len(c.Users) != 1 || c.Users[0].SessionFields[0]["a"] != "1" || c.Users[0].CreatedAt != "" {
		t.Fatalf("customer users: %+v", c.Users)
	}
	c = RenderChat(&d, ForAgent)
	if len(c.Thread.Events) != 2 {
		t.Fatalf("agent chat events: %+v", c.Thread.Events)
	}
	b, _ := json.Marshal(c)
	for _, want := range []string{`"properties":{}`, `"access":{"group_ids":[0]}`, `"is_followed":false`, `"user_ids":["V"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("chat JSON lacks %s: %s", want, b)
		}
	}
	s := RenderAgentSummary(&d)
	if s.LastEventPerType["message"].Event.Text != "note" || s.LastThreadSummary.Active != true {
		t.Fatalf("summary: %+v", s)
	}
}

// TestSourceFor: agents are told where a conversation came from and which
// external desk serves it; customers never are.
func TestSourceFor(t *testing.T) {
	cases := []struct {
		name string
		conv model.Conversation
		aud  Audience
		want *ConvSource
	}{
		{"v2 widget, agent", model.Conversation{Origin: "livechat.v2"}, ForAgent, &ConvSource{Origin: "livechat.v2"}},
		{"relayed, agent", model.Conversation{Origin: "rocketchat", Owner: "rc"}, ForAgent, &ConvSource{Origin: "rocketchat", RelayedTo: "rc"}},
		{"customer never", model.Conversation{Origin: "rocketchat", Owner: "rc"}, ForCustomer, nil},
		{"unknown origin", model.Conversation{}, ForAgent, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SourceFor(&tc.conv, tc.aud)
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			th := RenderThread(&ChatData{Conv: tc.conv}, tc.aud)
			if (th.Source == nil) != (tc.want == nil) {
				t.Fatalf("thread source %+v, want %+v", th.Source, tc.want)
			}
		})
	}
}
