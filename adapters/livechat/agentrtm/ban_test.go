package agentrtm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

func TestBanCustomer(t *testing.T) {
	f := newFollowSetup(t) // alice serves Tom (sales) and Una (support); carol serves sales
	ctx := context.Background()
	// Pat has no chat at all.
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name, body, want string
	}{
		{"missing id", `{"ban":{"days":1}}`, "validation"},
		{"missing ban", fmt.Sprintf(`{"id":%q}`, f.tom.ID), "validation"},
		{"days missing", fmt.Sprintf(`{"id":%q,"ban":{}}`, f.tom.ID), "validation"},
		{"days wrong type", fmt.Sprintf(`{"id":%q,"ban":{"days":"two"}}`, f.tom.ID), "validation"},
		{"id wrong type", `{"id":5,"ban":{"days":1}}`, "validation"},
		{"days too many", fmt.Sprintf(`{"id":%q,"ban":{"days":%d}}`, f.tom.ID, desk.MaxBanDays+1), "validation"},
		{"unknown customer", `{"id":"NOPE","ban":{"days":1}}`, "not_found"},
		{"no access", fmt.Sprintf(`{"id":%q,"ban":{"days":1}}`, f.una.ID), "not_found"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.k.Call("ban_customer", json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			if st, b := f.h.web(t, "tok-carol", "ban_customer", tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	for _, v := range []model.VisitorID{f.tom.ID, f.una.ID, pat.ID} {
		if b, err := f.h.d.VisitorBanned(ctx, v); err != nil || b {
			t.Fatalf("%s banned after refusals: %v %v", v, b, err)
		}
	}

	// carol may ban Tom (a chat of her department, not hers): every agent
	// is told, her own push carries her request_id.
	r := f.k.Call("ban_customer", map[string]any{"id": f.tom.ID, "ban": map[string]any{"days": 7}})
	if !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("ban: %s", r.Payload)
	}
	want := CustomerBanned{CustomerID: string(f.tom.ID), Ban: Ban{Days: 7}}
	for i, c := range []*rtm{f.k, f.a} {
		p := c.Push("customer_banned")
		var got CustomerBanned
		mustUnmarshal(t, p.Payload, &got)
		if got != want || (i == 0) != (p.RID() == r.RID()) {
			t.Fatalf("conn %d: %s rid %q", i, p.Payload, p.RID())
		}
	}
	// Tom can no longer write; his agent still can.
	_, _, err = f.h.d.Post(ctx, desk.PostRequest{Conv: f.tomConv.ID,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(f.tom.ID)}, Draft: desk.Draft{Text: "x"}})
	if !errors.Is(err, desk.ErrBanned) {
		t.Fatalf("banned customer posts: %v", err)
	}
	if r := f.a.Call("send_event", map[string]any{"chat_id": f.tom.ID, "event": map[string]any{"type": "message", "text": "bye"}}); !r.Success {
		t.Fatalf("agent send_event: %s", r.Payload)
	}
	// A customer without chats may be banned over the web.
	if st, b := f.h.web(t, "tok-carol", "ban_customer", fmt.Sprintf(`{"id":%q,"ban":{"days":1}}`, pat.ID)); st != 200 || string(b) != "{}" {
		t.Fatalf("web ban: %d %s", st, b)
	}
	if b, err := f.h.d.VisitorBanned(ctx, pat.ID); err != nil || !b {
		t.Fatalf("pat not banned: %v %v", b, err)
	}
}
