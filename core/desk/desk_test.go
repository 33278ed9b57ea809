package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

func TestEnsureVisitor(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	key := store.MapKey{System: "livechat.v2", Tenant: "lic1", Kind: "visitor", Foreign: "V-1"}

	v1, err := e.d.EnsureVisitor(ctx, key, model.Visitor{Name: "Vera", Email: "vera@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID == "" || v1.Name != "Vera" || v1.CreatedAt.IsZero() {
		t.Fatalf("new visitor = %+v", v1)
	}
	if id, err := e.bolt.Resolve(ctx, key); err != nil || id != string(v1.ID) {
		t.Fatalf("Resolve = %q, %v; want %s", id, err, v1.ID)
	}

	// The same foreign id returns the same visitor; an empty profile leaves
	// it as it is.
	v2, err := e.d.EnsureVisitor(ctx, key, model.Visitor{})
	if err != nil {
		t.Fatal(err)
	}
	if v2.ID != v1.ID || v2.Name != "Vera" || v2.Email != "vera@example.com" || !v2.CreatedAt.Equal(v1.CreatedAt) {
		t.Fatalf("second EnsureVisitor = %+v, want %+v", v2, v1)
	}

	// A new name is stored.
	v3, err := e.d.EnsureVisitor(ctx, key, model.Visitor{Name: "Vera B."})
	if err != nil {
		t.Fatal(err)
	}
	if v3.ID != v1.ID || v3.Name != "Vera B." || v3.Email != "vera@example.com" {
		t.Fatalf("renamed visitor = %+v", v3)
	}
	if got, _ := e.bolt.Visitor(ctx, v1.ID); got.Name != "Vera B." {
		t.Fatalf("stored name = %q, want Vera B.", got.Name)
	}

	// Any other part of the key names another visitor.
	for _, other := range []store.MapKey{
		{System: "livechat.v2", Tenant: "lic1", Kind: "visitor", Foreign: "V-2"},
		{System: "livechat.v2", Tenant: "lic2", Kind: "visitor", Foreign: "V-1"},
		{System: "rocketchat", Tenant: "lic1", Kind: "visitor", Foreign: "V-1"},
	} {
		v, err := e.d.EnsureVisitor(ctx, other, model.Visitor{})
		if err != nil {
			t.Fatal(err)
		}
		if v.ID == v1.ID {
			t.Fatalf("key %+v resolved to the visitor of %+v", other, key)
		}
	}
}

func TestEnsureVisitorConcurrent(t *testing.T) {
	var created counter
	e := newEnv(t, config{afterCommit: func(b *store.Batch, err error) {
		if err == nil && len(b.Maps) > 0 {
			created.add(len(b.Visitors))
		}
	}})
	key := store.MapKey{System: "rocketchat", Tenant: "srv", Kind: "visitor", Foreign: "token-1"}
	const n = 20
	ids := make([]model.VisitorID, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			v, err := e.d.EnsureVisitor(context.Background(), key, model.Visitor{Name: "Vera"})
			ids[i], errs[i] = v.ID, err
		})
	}
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("caller %d got visitor %s, caller 0 got %s", i, ids[i], ids[0])
		}
	}
	if got := created.get(); got != 1 {
		t.Fatalf("%d visitors created, want exactly 1", got)
	}
	if id, _ := e.bolt.Resolve(context.Background(), key); id != string(ids[0]) {
		t.Fatalf("Resolve = %s, want %s", id, ids[0])
	}
}

func TestStartRouting(t *testing.T) {
	tests := []struct {
		name   string
		agents []model.Agent
		setup  func(e *env)
		dept   model.DeptID
		want   model.AgentID // "" = queued
	}{
		{name: "nobody online", dept: "sales"},
		{name: "online accepting agent", dept: "sales", setup: func(e *env) { e.online("ann") }, want: "ann"},
		{name: "connected through the router", dept: "sales", setup: func(e *env) { e.router.Connect("ann", 1) }, want: "ann"},
		{name: "agent not accepting", dept: "sales", setup: func(e *env) { e.online("ann"); e.d.SetAccepting("ann", false) }},
		{name: "agent went offline", dept: "sales", setup: func(e *env) { e.online("ann"); e.d.AgentConnected("ann", false) }},
		{name: "only another department online", dept: "sales", setup: func(e *env) { e.online("bob") }},
		{name: "right department among others", dept: "support", setup: func(e *env) { e.online("ann", "bob", "cat") }, want: "bob"},
		{name: "agent serving all departments", agents: []model.Agent{ann, dan}, dept: "support",
			setup: func(e *env) { e.online("ann", "dan") }, want: "dan"},
		{name: "fewest open conversations", dept: "sales", setup: func(e *env) {
			e.online("ann", "cat")
			e.router.Reserve("ann")
		}, want: "cat"},
		{name: "agent at max chats", agents: []model.Agent{withMax(ann, 1), bob}, dept: "sales", setup: func(e *env) {
			e.online("ann")
			e.start(e.visitor("earlier"), "sales")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, config{agents: tc.agents})
			if tc.setup != nil {
				tc.setup(e)
			}
			v := e.visitor("vera")
			c, evs := e.start(v, tc.dept, Draft{Text: "hello"})
			stored := e.conv(c.ID)
			log := e.checkLog(c.ID)
			if stored.Visitor != v.ID || stored.Department != tc.dept || stored.Origin != "test" || stored.LastSeq != c.LastSeq {
				t.Fatalf("stored conversation = %+v, returned %+v", stored, c)
			}
			if len(log) != len(evs) || log[0].Text != "hello" || log[0].Author.ID != string(v.ID) {
				t.Fatalf("stored events %v, returned %v", kinds(log), kinds(evs))
			}
			if tc.want == "" {
				if c.State != model.StateQueued || c.Agent != "" || stored.State != model.StateQueued {
					t.Fatalf("conversation = %s agent %q, want queued", c.State, c.Agent)
				}
				if !slices.Equal(kinds(evs), []string{"message"}) {
					t.Fatalf("events = %v", kinds(evs))
				}
				if !slices.Contains(e.router.Queued(), c.ID) || e.router.Position(c.ID) == 0 {
					t.Fatalf("queued conversation not in the router's queue %v", e.router.Queued())
				}
				return
			}
			if c.State != model.StateOpen || c.Agent != tc.want || stored.Agent != tc.want || stored.AssignedAt.IsZero() {
				t.Fatalf("conversation = %s agent %q, want open with %s", c.State, c.Agent, tc.want)
			}
			if !slices.Equal(kinds(evs), []string{"message", "system_message/agent_joined"}) {
				t.Fatalf("events = %v", kinds(evs))
			}
			if evs[1].Vars["agent_id"] != string(tc.want) || evs[1].Author.Kind != model.AuthorSystem {
				t.Fatalf("agent joined event = %+v", evs[1])
			}
			if e.router.Position(c.ID) != 0 {
				t.Fatal("routed conversation is queued")
			}
		})
	}
}

func TestQueuedConversationAssignedWhenAgentConnects(t *testing.T) {
	e := newEnv(t, config{})
	e.run()
	c, _ := e.start(e.visitor("vera"), "sales", Draft{Text: "anyone?"})
	if c.State != model.StateQueued {
		t.Fatalf("state = %s, want queued", c.State)
	}
	e.wantQueued(c.ID)
	if p := e.router.Position(c.ID); p != 1 {
		t.Fatalf("Position = %d, want 1", p)
	}
	sub := e.bus.SubscribeConv(c.ID, 16)
	defer sub.Close()

	e.online("bob") // wrong department: stays queued
	e.online("ann")
	n := waitFor(t, sub, "assignment to ann", assignedTo(c.ID, "ann"))
	if !slices.Equal(kinds(n.Events), []string{"system_message/agent_joined"}) || n.Events[0].Seq != 2 {
		t.Fatalf("assignment notice events = %v", kinds(n.Events))
	}
	if got := e.conv(c.ID); got.State != model.StateOpen || got.Agent != "ann" {
		t.Fatalf("stored = %s/%s", got.State, got.Agent)
	}
	e.checkLog(c.ID)
	e.eventuallyQueued()
	e.wantOpen(map[model.AgentID]int{"ann": 1, "bob": 0})
}

func TestQueuedConversationsAssignedOldestFirst(t *testing.T) {
	e := newEnv(t, config{agents: []model.Agent{withMax(ann, 1), bob}})
	e.run()
	var convs []model.ConvID
	for i := range 3 {
		c, _ := e.start(e.visitor(fmt.Sprint("v", i)), "sales")
		convs = append(convs, c.ID)
	}
	e.wantQueued(convs...)
	sub := e.bus.SubscribeDesk(64)
	defer sub.Close()
	for i, id := range convs {
		if i == 0 {
			e.online("ann")
		} else {
			// Closing the previous conversation frees ann for the next one.
			if _, err := e.d.Close(context.Background(), convs[i-1], agentAuthor("ann"), "done", ""); err != nil {
				t.Fatal(err)
			}
		}
		n := waitFor(t, sub, "an assignment", func(n hub.Notice) bool { return n.Conv.State == model.StateOpen })
		if n.Conv.ID != id {
			t.Fatalf("assignment %d went to %s, want the oldest queued %s", i, n.Conv.ID, id)
		}
		e.eventuallyQueued(convs[i+1:]...)
	}
}

func TestStartVisitorBusy(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	v := e.visitor("vera")
	first, _ := e.start(v, "sales")
	open, _, err := e.d.Start(ctx, StartRequest{Visitor: v.ID, Department: "support"})
	if !errors.Is(err, ErrVisitorBusy) {
		t.Fatalf("second Start = %v, want ErrVisitorBusy", err)
	}
	if open.ID != first.ID {
		t.Fatalf("busy Start returned conversation %s, want the open one %s", open.ID, first.ID)
	}
	if got, ok, err := e.d.OpenConversation(ctx, v.ID); err != nil || !ok || got.ID != first.ID {
		t.Fatalf("OpenConversation = %s, %v, %v", got.ID, ok, err)
	}
	// Another visitor is not affected.
	e.start(e.visitor("other"), "sales")

	if _, err := e.d.Close(ctx, first.ID, visitorAuthor(v), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.d.OpenConversation(ctx, v.ID); ok {
		t.Fatal("OpenConversation found one after Close")
	}
	second, _ := e.start(v, "support")
	if second.ID == first.ID {
		t.Fatal("Start after Close reused the closed conversation")
	}
}

func TestStartVisitorBusyConcurrent(t *testing.T) {
	e := newEnv(t, config{})
	v := e.visitor("vera")
	const n = 10
	errs := make([]error, n)
	ids := make([]model.ConvID, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			c, _, err := e.d.Start(context.Background(), StartRequest{Visitor: v.ID, Department: "sales"})
			ids[i], errs[i] = c.ID, err
		})
	}
	close(gate)
	wg.Wait()
	started := 0
	var winner model.ConvID
	for i, err := range errs {
		switch {
		case err == nil:
			started++
			winner = ids[i]
		case !errors.Is(err, ErrVisitorBusy):
			t.Fatalf("Start: %v", err)
		}
	}
	if started != 1 {
		t.Fatalf("%d concurrent Starts succeeded, want 1", started)
	}
	for i, err := range errs {
		if err != nil && ids[i] != winner {
			t.Fatalf("busy Start returned %s, want %s", ids[i], winner)
		}
	}
	got, _ := e.bolt.VisitorConversations(context.Background(), v.ID)
	if len(got) != 1 {
		t.Fatalf("visitor has %d conversations, want 1", len(got))
	}
}

func TestStartInvalid(t *testing.T) {
	e := newEnv(t, config{limits: Limits{MaxText: 8}})
	v := e.visitor("vera")
	tests := []struct {
		name string
		req  StartRequest
		want error
	}{
		{"unknown department", StartRequest{Visitor: v.ID, Department: "legal"}, ErrInvalid},
		{"unknown visitor", StartRequest{Visitor: "nobody", Department: "sales"}, ErrNotFound},
		{"empty first message", StartRequest{Visitor: v.ID, Events: []Draft{{Text: " "}}}, ErrInvalid},
		{"first message too long", StartRequest{Visitor: v.ID, Events: []Draft{{Text: "123456789"}}}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.d.Start(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("Start = %v, want %v", err, tc.want)
			}
		})
	}
	if ids, _ := e.bolt.VisitorConversations(context.Background(), v.ID); len(ids) != 0 {
		t.Fatalf("refused Starts stored %d conversations", len(ids))
	}
	e.wantQueued()
}

func TestPostDenseSeqsUnderConcurrency(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	base := c.LastSeq // agent joined
	const posters, each = 8, 25
	type posted struct {
		seq  uint64
		text string
	}
	results := make([][]posted, posters)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for p := range posters {
		by := visitorAuthor(v)
		if p%2 == 1 {
			by = agentAuthor("ann")
		}
		wg.Go(func() {
			<-gate
			for i := range each {
				text := fmt.Sprintf("p%d-%d", p, i)
				ev, dup, err := e.d.Post(context.Background(), PostRequest{Conv: c.ID, Author: by, Draft: Draft{Text: text}})
				if err != nil || dup {
					t.Errorf("Post %s: dup %v, %v", text, dup, err)
					return
				}
				results[p] = append(results[p], posted{ev.Seq, text})
			}
		})
	}
	close(gate)
	wg.Wait()
	if t.Failed() {
		return
	}
	log := e.checkLog(c.ID)
	if want := base + posters*each; uint64(len(log)) != want {
		t.Fatalf("%d events stored, want %d", len(log), want)
	}
	ids := make(map[string]bool)
	for _, ev := range log {
		if ids[ev.ID] {
			t.Fatalf("event id %s used twice", ev.ID)
		}
		ids[ev.ID] = true
	}
	for p, rs := range results {
		for i, r := range rs {
			if i > 0 && r.seq <= rs[i-1].seq {
				t.Fatalf("poster %d: seq %d after %d: one poster's messages out of order", p, r.seq, rs[i-1].seq)
			}
			if got := log[r.seq-1].Text; got != r.text {
				t.Fatalf("seq %d holds %q, Post returned it for %q", r.seq, got, r.text)
			}
		}
	}
}

func TestPostIdempotent(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	ctx := context.Background()
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	req := PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: "once", ClientKey: "k1"},
		IdemSystem: "rocketchat", IdemKey: "k1"}

	first, dup, err := e.d.Post(ctx, req)
	if err != nil || dup {
		t.Fatalf("first Post = dup %v, %v", dup, err)
	}
	if first.ClientKey != "k1" {
		t.Fatalf("ClientKey = %q", first.ClientKey)
	}
	retry := req
	retry.Draft.Text = "once (retried)" // a retry returns the first event, not this
	again, dup, err := e.d.Post(ctx, retry)
	if err != nil || !dup {
		t.Fatalf("retried Post = dup %v, %v; want dup", dup, err)
	}
	if again.ID != first.ID || again.Seq != first.Seq || again.Text != "once" {
		t.Fatalf("retried Post returned %+v, want %+v", again, first)
	}
	// The same key from another system is another key.
	other := req
	other.IdemSystem = "livechat"
	if _, dup, err := e.d.Post(ctx, other); err != nil || dup {
		t.Fatalf("Post with key of another system = dup %v, %v", dup, err)
	}
	log := e.checkLog(c.ID)
	n := 0
	for _, ev := range log {
		if ev.Text == "once" {
			n++
		}
	}
	if n != 2 { // rocketchat's and livechat's
		t.Fatalf("%d events with the text stored, want 2", n)
	}

	// A key already used in another conversation is refused.
	w := e.visitor("wes")
	c2, _ := e.start(w, "sales")
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: c2.ID, Author: visitorAuthor(w), Draft: Draft{Text: "x"},
		IdemSystem: "rocketchat", IdemKey: "k1"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("key reused in another conversation: %v, want ErrInvalid", err)
	}
	if got := e.conv(c2.ID).LastSeq; got != c2.LastSeq {
		t.Fatalf("refused post changed LastSeq to %d", got)
	}
}

func TestPostIdempotentConcurrent(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	const n = 12
	evs := make([]model.Event, n)
	dups := make([]bool, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			evs[i], dups[i], errs[i] = e.d.Post(context.Background(), PostRequest{Conv: c.ID, Author: visitorAuthor(v),
				Draft: Draft{Text: "hi"}, IdemSystem: "livechat", IdemKey: "same"})
		})
	}
	close(gate)
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Post %d: %v", i, errs[i])
		}
		if !dups[i] {
			fresh++
		}
		if evs[i].ID != evs[0].ID || evs[i].Seq != evs[0].Seq {
			t.Fatalf("Post %d returned event %s seq %d, Post 0 %s seq %d", i, evs[i].ID, evs[i].Seq, evs[0].ID, evs[0].Seq)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d posts reported a new event, want 1", fresh)
	}
	if log := e.checkLog(c.ID); uint64(len(log)) != c.LastSeq+1 {
		t.Fatalf("%d events stored, want %d", len(log), c.LastSeq+1)
	}
}

func TestPostRefused(t *testing.T) {
	e := newEnv(t, config{limits: Limits{MaxText: 10}})
	e.online("ann")
	ctx := context.Background()
	v := e.visitor("vera")
	open, _ := e.start(v, "sales")                      // served by ann
	queued, _ := e.start(e.visitor("quinn"), "support") // bob is offline
	closedV := e.visitor("carl")
	closed, _ := e.start(closedV, "sales")
	if _, err := e.d.Close(ctx, closed.ID, visitorAuthor(closedV), "", ""); err != nil {
		t.Fatal(err)
	}
	va := visitorAuthor(v)
	tests := []struct {
		name string
		req  PostRequest
		want error
	}{
		{"closed conversation", PostRequest{Conv: closed.ID, Author: visitorAuthor(closedV), Draft: Draft{Text: "hi"}}, ErrInactive},
		{"unknown conversation", PostRequest{Conv: "nope", Author: va, Draft: Draft{Text: "hi"}}, ErrNotFound},
		{"another visitor's conversation", PostRequest{Conv: queued.ID, Author: va, Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"agent of another department", PostRequest{Conv: open.ID, Author: agentAuthor("bob"), Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"agent of the department, not serving it", PostRequest{Conv: open.ID, Author: agentAuthor("cat"), Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"unknown agent", PostRequest{Conv: open.ID, Author: agentAuthor("mallory"), Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"agent of another department on queued", PostRequest{Conv: queued.ID, Author: agentAuthor("ann"), Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"author without kind", PostRequest{Conv: open.ID, Author: model.Author{ID: string(v.ID)}, Draft: Draft{Text: "hi"}}, ErrForbidden},
		{"text over the limit", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Text: "12345678901"}}, ErrTooLarge},
		{"empty message", PostRequest{Conv: open.ID, Author: va, Draft: Draft{}}, ErrInvalid},
		{"blank message", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Text: " \n\t"}}, ErrInvalid},
		{"not UTF-8", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Text: "a\xffb"}}, ErrInvalid},
		{"unknown kind", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Kind: "sticker", Text: "hi"}}, ErrInvalid},
		{"file without url", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Kind: model.KindFile, File: &model.File{Name: "a.png"}}}, ErrInvalid},
		{"form without fields", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Kind: model.KindForm}}, ErrInvalid},
		{"unknown visibility", PostRequest{Conv: open.ID, Author: va, Draft: Draft{Text: "hi", Visibility: "secret"}}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before uint64
			if tc.req.Conv != "nope" {
				before = e.conv(tc.req.Conv).LastSeq
			}
			ev, _, err := e.d.Post(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Post = %+v, %v; want %v", ev, err, tc.want)
			}
			if tc.req.Conv != "nope" {
				if got := e.conv(tc.req.Conv); got.LastSeq != before {
					t.Fatalf("refused Post moved LastSeq %d -> %d", before, got.LastSeq)
				}
				e.checkLog(tc.req.Conv)
			}
		})
	}
	e.wantOpen(map[model.AgentID]int{"ann": 1, "bob": 0, "cat": 0})
	e.wantQueued(queued.ID)

	// At the limit is fine, and the kinds the refusals above lack pass.
	for _, dr := range []Draft{
		{Text: "1234567890"},
		{Kind: model.KindFile, File: &model.File{Name: "a.png", URL: "https://x/a.png"}},
		{Kind: model.KindForm, Form: &model.Form{Type: "prechat"}},
		{Text: "note", Visibility: model.VisibleAgents},
	} {
		if _, _, err := e.d.Post(ctx, PostRequest{Conv: open.ID, Author: va, Draft: dr}); err != nil {
			t.Fatalf("Post(%+v): %v", dr, err)
		}
	}
	// The system may post anywhere that is open.
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: queued.ID, Author: model.System,
		Draft: Draft{Kind: model.KindSystem, Subtype: "note", Text: "queued"}}); err != nil {
		t.Fatalf("system Post: %v", err)
	}
}

func TestAgentTakesQueuedConversationByPosting(t *testing.T) {
	e := newEnv(t, config{})
	// Nobody online: the conversation queues; ann answers it anyway.
	v := e.visitor("vera")
	c, _ := e.start(v, "sales", Draft{Text: "hello?"})
	e.wantQueued(c.ID)
	sub := e.bus.SubscribeConv(c.ID, 8)
	defer sub.Close()

	ev, dup, err := e.d.Post(context.Background(), PostRequest{Conv: c.ID, Author: agentAuthor("ann"), Draft: Draft{Text: "hi, Ann here"}})
	if err != nil || dup {
		t.Fatalf("Post = dup %v, %v", dup, err)
	}
	if ev.Seq != 3 || ev.Author.ID != "ann" {
		t.Fatalf("event = seq %d by %s, want seq 3 by ann", ev.Seq, ev.Author.ID)
	}
	got := e.conv(c.ID)
	if got.State != model.StateOpen || got.Agent != "ann" {
		t.Fatalf("conversation = %s/%s, want open with ann", got.State, got.Agent)
	}
	log := e.checkLog(c.ID)
	if !slices.Equal(kinds(log), []string{"message", "system_message/agent_joined", "message"}) {
		t.Fatalf("log = %v", kinds(log))
	}
	n := waitFor(t, sub, "take-over notice", assignedTo(c.ID, "ann"))
	if len(n.Events) != 2 || n.Events[1].ID != ev.ID {
		t.Fatalf("notice events = %v", kinds(n.Events))
	}
	e.wantQueued()
	e.wantOpen(map[model.AgentID]int{"ann": 1})

	// Now it is ann's: cat (same department) may no longer post.
	if _, _, err := e.d.Post(context.Background(), PostRequest{Conv: c.ID, Author: agentAuthor("cat"), Draft: Draft{Text: "me too"}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("other agent Post = %v, want ErrForbidden", err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	ctx := context.Background()
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	e.wantOpen(map[model.AgentID]int{"ann": 1})

	if _, err := e.d.Close(ctx, c.ID, visitorAuthor(e.visitor("mallory")), "", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Close by another visitor = %v, want ErrForbidden", err)
	}
	if _, err := e.d.Close(ctx, c.ID, agentAuthor("cat"), "", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Close by an agent not serving it = %v, want ErrForbidden", err)
	}
	by := visitorAuthor(v)
	closed, err := e.d.Close(ctx, c.ID, by, "visitor left", "sess-1")
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != model.StateClosed || closed.ClosedAt.IsZero() || closed.ClosedBy == nil || *closed.ClosedBy != by {
		t.Fatalf("closed = %+v", closed)
	}
	stored := e.conv(c.ID)
	if stored.State != model.StateClosed || stored.LastSeq != closed.LastSeq {
		t.Fatalf("stored = %+v", stored)
	}
	log := e.checkLog(c.ID)
	last := log[len(log)-1]
	if last.Subtype != model.SysClosed || last.Vars["reason"] != "visitor left" || last.Vars["by_id"] != string(v.ID) {
		t.Fatalf("closing event = %+v", last)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 0})

	again, err := e.d.Close(ctx, c.ID, by, "", "")
	if !errors.Is(err, ErrInactive) {
		t.Fatalf("second Close = %v, want ErrInactive", err)
	}
	if again.State != model.StateClosed {
		t.Fatalf("second Close returned state %s", again.State)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 0}) // not released twice
	if got := e.checkLog(c.ID); len(got) != len(log) {
		t.Fatal("second Close wrote an event")
	}
	if err := e.d.Typing(ctx, c.ID, by, true, "", ""); !errors.Is(err, ErrInactive) {
		t.Fatalf("Typing on closed = %v, want ErrInactive", err)
	}
	if _, err := e.d.Close(ctx, "nope", by, "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Close unknown = %v, want ErrNotFound", err)
	}

	// A queued conversation may be closed by an agent of its department,
	// and leaves the queue.
	q, _ := e.start(e.visitor("quinn"), "support")
	e.wantQueued(q.ID)
	if _, err := e.d.Close(ctx, q.ID, agentAuthor("bob"), "spam", ""); err != nil {
		t.Fatal(err)
	}
	e.wantQueued()
	e.wantOpen(map[model.AgentID]int{"bob": 0})
}

func TestCloseReleasesOneAgentOnce(t *testing.T) {
	// Two conversations with ann; closing one gives back exactly one.
	e := newEnv(t, config{})
	e.online("ann")
	c1, _ := e.start(e.visitor("a"), "sales")
	e.start(e.visitor("b"), "sales")
	e.wantOpen(map[model.AgentID]int{"ann": 2})
	for range 3 {
		_, _ = e.d.Close(context.Background(), c1.ID, model.System, "", "")
	}
	e.wantOpen(map[model.AgentID]int{"ann": 1})
}

func TestTyping(t *testing.T) {
	e := newEnv(t, config{limits: Limits{MaxText: 4}})
	e.online("ann")
	ctx := context.Background()
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	sub := e.bus.SubscribeConv(c.ID, 4)
	defer sub.Close()
	if err := e.d.Typing(ctx, c.ID, visitorAuthor(v), true, "hel", "s1"); err != nil {
		t.Fatal(err)
	}
	n := waitFor(t, sub, "typing notice", func(n hub.Notice) bool { return n.Typing != nil })
	if !n.Typing.On || n.Typing.Text != "hel" || n.Origin != "s1" || len(n.Events) != 0 {
		t.Fatalf("typing notice = %+v", n)
	}
	if err := e.d.Typing(ctx, c.ID, visitorAuthor(e.visitor("x")), true, "", ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Typing by another visitor = %v", err)
	}
	if err := e.d.Typing(ctx, c.ID, agentAuthor("ann"), true, "hello", ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Typing too large = %v", err)
	}
	if got := e.conv(c.ID).LastSeq; got != c.LastSeq {
		t.Fatal("Typing stored something")
	}
}

func TestNoticesOnlyAfterCommit(t *testing.T) {
	e := newEnv(t, config{})
	e.run()
	ctx := context.Background()
	// Subscribe first; every notice must describe what the store already
	// holds at the moment it is received.
	sub := e.bus.SubscribeDesk(1024)
	defer sub.Close()
	var (
		problems []string
		seen     int
		target   = make(chan model.ConvID, 1)
		checked  = make(chan struct{})
	)
	go func() {
		defer close(checked)
		last := model.ConvID("")
		for {
			select {
			case n := <-sub.C():
				seen++
				stored, err := e.bolt.Conversation(ctx, n.Conv.ID)
				if err != nil {
					problems = append(problems, fmt.Sprintf("notice for %s before the conversation was stored: %v", n.Conv.ID, err))
					continue
				}
				if stored.LastSeq < n.Conv.LastSeq {
					problems = append(problems, fmt.Sprintf("notice for %s at seq %d, store at %d", n.Conv.ID, n.Conv.LastSeq, stored.LastSeq))
				}
				for _, ev := range n.Events {
					got, err := e.bolt.Events(ctx, ev.Conv, ev.Seq, 1)
					if err != nil || len(got) != 1 || got[0].ID != ev.ID {
						problems = append(problems, fmt.Sprintf("notice event %s seq %d not in the store", ev.Conv, ev.Seq))
					}
				}
				if last == "" {
					last = <-target
				}
				if n.Conv.ID == last && n.Conv.State == model.StateClosed {
					return // the last notice of the test
				}
			case <-sub.Done():
				problems = append(problems, fmt.Sprintf("desk subscription ended: %v", sub.Err()))
				return
			}
		}
	}()

	convSub := e.bus.SubscribeDesk(1024)
	defer convSub.Close()
	v := e.visitor("vera")
	c, _ := e.start(v, "sales", Draft{Text: "hi"})
	target <- c.ID
	e.online("ann")
	waitFor(t, convSub, "assignment", assignedTo(c.ID, "ann"))
	for i := range 20 {
		ev, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: visitorAuthor(v), Draft: Draft{Text: fmt.Sprint(i)}, Session: "s"})
		if err != nil {
			t.Fatal(err)
		}
		n := waitFor(t, convSub, "post notice", func(n hub.Notice) bool { return len(n.Events) > 0 && n.Events[0].ID == ev.ID })
		if n.Origin != "s" {
			t.Fatalf("notice Origin = %q, want the posting session", n.Origin)
		}
	}
	if err := e.d.Assign(ctx, c.ID, "cat", model.System); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Transfer(ctx, c.ID, "support", model.System); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Close(ctx, c.ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-checked:
	case <-time.After(failAfter):
		t.Fatal("checker did not see the close notice")
	}
	for _, p := range problems {
		t.Error(p)
	}
	// start, assignment, 20 posts, assign, transfer, close
	if seen != 25 {
		t.Fatalf("checker saw %d notices, want 25", seen)
	}
}

// TestReplayRefusesAnotherAuthor: an idempotency key is never a way to read
// another author's event (a guessed Rocket.Chat message _id, say).
func TestReplayRefusesAnotherAuthor(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	vis := e.visitor("replay-owner")
	conv, _ := e.start(vis, "")
	owner := visitorAuthor(vis)
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: owner, Draft: Draft{Text: "secret"}, IdemSystem: "t", IdemKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, dup, err := e.d.Post(ctx, PostRequest{Conv: conv.ID, Author: model.System, Draft: Draft{Text: "x"}, IdemSystem: "t", IdemKey: "k1"}); !errors.Is(err, ErrInvalid) || dup {
		t.Fatalf("replay by another author: dup=%v err=%v, want ErrInvalid", dup, err)
	}
	other := e.visitor("other")
	if _, _, err := e.d.Start(ctx, StartRequest{Visitor: other.ID, Author: owner}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("start for another visitor: %v, want ErrForbidden", err)
	}
}

// TestPostAfterCloseWithOutbox: a system record about a closed
// conversation (Rocket.Chat's transcript history message) is appended with
// AfterClose, together with the outbox row it owes; no other author may
// use AfterClose to write into a closed conversation.
func TestPostAfterCloseWithOutbox(t *testing.T) {
	e := newEnv(t, config{})
	e.online("ann")
	ctx := context.Background()
	v := e.visitor("vera")
	c, _ := e.start(v, "sales")
	if _, err := e.d.Close(ctx, c.ID, visitorAuthor(v), "", ""); err != nil {
		t.Fatal(err)
	}
	row := store.OutboxRow{ID: "mail-1", Target: "mail:test", Conv: c.ID, Payload: []byte("{}")}
	for _, by := range []model.Author{visitorAuthor(v), agentAuthor("ann")} {
		if _, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: by, AfterClose: true, Draft: Draft{Text: "late"}}); !errors.Is(err, ErrInactive) {
			t.Errorf("%s posting AfterClose = %v, want ErrInactive", by.Kind, err)
		}
	}
	if _, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: model.System, Draft: sysDraft("note", "n", nil)}); !errors.Is(err, ErrInactive) {
		t.Errorf("system post without AfterClose = %v, want ErrInactive", err)
	}
	ev, _, err := e.d.Post(ctx, PostRequest{Conv: c.ID, Author: model.System, AfterClose: true,
		Draft: sysDraft("note", "transcript sent", nil), Outbox: []store.OutboxRow{row}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.conv(c.ID); got.State != model.StateClosed || got.LastSeq != ev.Seq {
		t.Errorf("conversation after = %+v, event seq %d", got, ev.Seq)
	}
	due, err := e.bolt.OutboxDue(ctx, "mail:", time.Now().Add(time.Hour), 0, 0)
	if err != nil || len(due) != 1 || due[0].ID != "mail-1" {
		t.Errorf("outbox = %+v, %v; want the row committed with the event", due, err)
	}
}
