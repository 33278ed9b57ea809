package customer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

func testForms(t *testing.T) *wire.Forms {
	t.Helper()
	sales := wire.GroupID("sales")
	f, err := wire.NewForms([]wire.Form{
		{Type: "prechat", Group: 0, Fields: []wire.FormFieldDef{
			{ID: "1", Type: "name", Label: "Your name", Required: true},
			{ID: "2", Type: "select", Label: "Topic", Options: []wire.FormOption{{ID: "0", Label: "Billing"}, {ID: "1", Label: "Sales", GroupID: &sales}}},
		}},
		{Type: "postchat", Group: sales, ID: "sales-survey", Fields: []wire.FormFieldDef{{ID: "1", Type: "rating", Label: "Rate us"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestForms: get_form answers the configured form of the group (or group
// 0's), and the customer's filled_form, sent in start_chat and with
// send_event, is stored with its answers and the configured form's type,
// pushed back to the customer as sent.
func TestForms(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Forms = testForms(t) })
	h.d.AgentConnected(alice, true)
	sales := wire.GroupID("sales")
	c, me, _ := h.customer(t)
	for _, tc := range []struct {
		name string
		req  string
		want string
	}{
		{"group 0 prechat", `{"group_id":0,"type":"prechat"}`, `{"enabled":true,"form":{"id":"prechat_0","fields":[{"id":"1","type":"name","label":"Your name","required":true},{"id":"2","type":"select","label":"Topic","required":false,"options":[{"id":"0","label":"Billing"},{"id":"1","label":"Sales","group_id":` + fmt.Sprint(sales) + `}]}]}}`},
		{"sales falls back to group 0", fmt.Sprintf(`{"group_id":%d,"type":"prechat"}`, sales), `"id":"prechat_0"`},
		{"sales postchat", fmt.Sprintf(`{"group_id":%d,"type":"postchat"}`, sales), `{"enabled":true,"form":{"id":"sales-survey","fields":[{"id":"1","type":"rating","label":"Rate us","required":false}]}}`},
		{"no ticket form", `{"group_id":0,"type":"ticket"}`, `{"enabled":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Call("get_form", json.RawMessage(tc.req))
			if !r.Success || !(string(r.Payload) == tc.want || (tc.want[0] == '"' && contains(r.Payload, tc.want))) {
				t.Fatalf("get_form: %s\nwant %s", r.Payload, tc.want)
			}
		})
	}

	// The pre-chat answers open the chat, as the LiveChat widget sends them.
	start := `{"chat":{"thread":{"events":[` +
		`{"type":"filled_form","form_id":"prechat_0","fields":[{"id":"1","type":"name","label":"Your name","answer":"Ann"},{"id":"2","type":"select","label":"Topic","answer":{"id":"0","label":"Billing"}}]},` +
		`{"type":"message","text":"hello"}]}}}`
	if r := c.Call("start_chat", json.RawMessage(start)); !r.Success {
		t.Fatalf("start_chat: %s", r.Payload)
	}
	c.Push("incoming_chat")
	post := `{"chat_id":"` + string(me) + `","event":{"type":"filled_form","form_id":"sales-survey","fields":[{"id":"1","type":"rating","label":"Rate us","answer":5}]}}`
	r := c.Call("send_event", json.RawMessage(post))
	if !r.Success {
		t.Fatalf("send_event filled_form: %s", r.Payload)
	}
	var ie IncomingEvent
	mustUnmarshal(t, c.Push("incoming_event").Payload, &ie)
	if ie.Event.Type != "filled_form" || ie.Event.FormID != "sales-survey" || ie.Event.FormType != "postchat" ||
		len(ie.Event.Fields) != 1 || string(ie.Event.Fields[0].Answer) != "5" {
		t.Fatalf("incoming_event: %+v", ie.Event)
	}
	ids, err := h.st.VisitorConversations(context.Background(), me)
	if err != nil || len(ids) != 1 {
		t.Fatalf("conversations: %v %v", ids, err)
	}
	evs, err := h.st.Events(context.Background(), ids[0], 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var forms []*model.Form
	for i := range evs {
		if evs[i].Kind == model.KindForm {
			forms = append(forms, evs[i].Form)
		}
	}
	if len(forms) != 2 || forms[0].Type != "prechat" || forms[0].Summary() != "Your name: Ann\nTopic: Billing" || forms[1].Type != "postchat" {
		t.Fatalf("stored forms: %+v", forms)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestCustomerEventModel: what a customer may send (message, file,
// filled_form, custom, rich_message) and what it may not: system messages,
// and any narrowing of visibility (its own words are shown to it too),
// whichever name the narrowing uses.
func TestCustomerEventModel(t *testing.T) {
	h := newHarness(t, nil)
	c, me, _ := h.chatting(t)
	for _, tc := range []struct {
		name, event, errType string
	}{
		{"message", `{"type":"message","text":"x","recipients":"all"}`, ""},
		{"custom", `{"type":"custom","content":{"a":1}}`, ""},
		{"filled_form, seed shape", `{"type":"filled_form","fields":[{"type":"email","name":"email","label":"E-mail:","required":true,"value":"j@example.org"},{"type":"information","name":"info","label":"Before we start"}]}`, ""},
		{"rich_message", `{"type":"rich_message","template_id":"quick_replies","elements":[{"title":"Pick","buttons":[{"text":"A"}]}]}`, ""},
		{"recipients agents", `{"type":"message","text":"x","recipients":"agents"}`, "validation"},
		{"visibility agents", `{"type":"message","text":"x","visibility":"agents"}`, "validation"},
		{"recipients unknown", `{"type":"message","text":"x","recipients":"nobody"}`, "validation"},
		{"system_message", `{"type":"system_message","system_message_type":"x","text":"x"}`, "validation"},
		{"file not uploaded", `{"type":"file","url":"https://evil.example/x.png","name":"x.png"}`, "validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Call("send_event", json.RawMessage(`{"chat_id":"`+string(me)+`","event":`+tc.event+`}`))
			if tc.errType == "" {
				if !r.Success {
					t.Fatalf("refused: %s", r.Payload)
				}
				c.Push("incoming_event")
				return
			}
			if r.Success || r.ErrType() != tc.errType {
				t.Fatalf("want %s, got %s", tc.errType, r.Payload)
			}
		})
	}
}

// TestCustomerFileEvent: a customer's file event names an upload_file URL;
// name, type and size come from the upload, not the client.
func TestCustomerFileEvent(t *testing.T) {
	h := newHarness(t, nil)
	c, me, tok := h.chatting(t)
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", "note.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v3.5/customer/action/upload_file?organization_id=org-1", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		URL string `json:"url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload_file: %d %v", resp.StatusCode, err)
	}
	r := c.Call("send_event", map[string]any{"chat_id": string(me), "event": map[string]any{"type": "file", "url": up.URL, "name": "lies.exe", "size": 1}})
	if !r.Success {
		t.Fatalf("send_event file: %s", r.Payload)
	}
	var ie IncomingEvent
	mustUnmarshal(t, c.Push("incoming_event").Payload, &ie)
	if ie.Event.Type != "file" || ie.Event.URL != up.URL || ie.Event.Name != "note.txt" || ie.Event.Size != 5 {
		t.Fatalf("file event: %+v", ie.Event)
	}
}

// TestChatTransferredReachesCustomer: after a transfer the customer gets
// chat_transferred with what customer-sdk 4.0.2 parses (chat_id,
// thread_id, transferred_to.{agent_ids,group_ids}, reason, requester_id),
// after the transfer's system message.
func TestChatTransferredReachesCustomer(t *testing.T) {
	h := newHarness(t, nil)
	c, me, _ := h.chatting(t)
	ids, err := h.st.VisitorConversations(context.Background(), me)
	if err != nil || len(ids) != 1 {
		t.Fatalf("conversations: %v %v", ids, err)
	}
	h.d.AgentConnected(carol, true)
	if err := h.d.Transfer(context.Background(), ids[0], "sales", model.Author{Kind: model.AuthorAgent, ID: string(alice)}); err != nil {
		t.Fatal(err)
	}
	var sawSystem bool
	f := c.Await(func(f frame) bool {
		if f.Action == "incoming_event" && contains(f.Payload, `"chat_transferred"`) {
			sawSystem = true
		}
		return f.Action == "chat_transferred"
	})
	if !sawSystem || f.Type != "push" || f.RID() != "" {
		t.Fatalf("chat_transferred frame %+v (system message before it: %v)", f, sawSystem)
	}
	var ct wire.ChatTransferred
	mustUnmarshal(t, f.Payload, &ct)
	if ct.ChatID != string(me) || ct.ThreadID != string(ids[0]) || ct.Reason != "manual" || ct.RequesterID != string(alice) ||
		len(ct.TransferredTo.GroupIDs) != 1 || ct.TransferredTo.GroupIDs[0] != wire.GroupID("sales") ||
		len(ct.TransferredTo.AgentIDs) != 1 || ct.TransferredTo.AgentIDs[0] != string(carol) {
		t.Fatalf("chat_transferred: %+v", ct)
	}
}
