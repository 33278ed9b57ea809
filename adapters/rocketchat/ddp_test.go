package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/adapters/internal/ddp"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
)

func TestDDPHandshake(t *testing.T) {
	env := newDDPEnv(t, nil)
	c := env.dial(t, "/websocket")
	if f := c.recv(); f.raw != `{"server_id":"0"}` {
		t.Fatalf("first frame %s, want Meteor's server_id welcome", f.raw)
	}
	// Anything before connect.
	c.send(map[string]any{"msg": "method", "method": "livechat:setUpConnection", "params": []any{}, "id": "ddp-0"})
	f := c.awaitMsg("error")
	if f.m["reason"] != "Must connect first" || f.m["offendingMessage"].(map[string]any)["id"] != "ddp-0" {
		t.Fatalf("before connect: %s", f.raw)
	}
	session := c.connect()
	if len(session) != 17 || strings.Trim(session, meteorChars) != "" {
		t.Fatalf("session id %q is not a Meteor Random.id()", session)
	}
	c.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1"}})
	if f := c.awaitMsg("error"); f.m["reason"] != "Already connected" {
		t.Fatalf("second connect: %s", f.raw)
	}
	// Each connection has its own session id.
	c2 := env.dial(t, "/websocket")
	if s2 := c2.connect(); s2 == session {
		t.Fatal("two connections share a session id")
	}
}

func TestDDPVersionMismatchFails(t *testing.T) {
	env := newDDPEnv(t, nil)
	for _, tc := range []struct {
		connect map[string]any
		version string
	}{
		{map[string]any{"msg": "connect", "version": "2", "support": []string{"2"}}, "1"},
		{map[string]any{"msg": "connect", "version": "pre1", "support": []string{"pre2", "pre1"}}, "pre2"},
		{map[string]any{"msg": "connect"}, "1"},
	} {
		c := env.dial(t, "/websocket")
		c.send(tc.connect)
		f := c.awaitMsg("failed")
		if f.m["version"] != tc.version {
			t.Fatalf("failed frame %s, want version %s", f.raw, tc.version)
		}
		if err := c.closeErr(); !websocket.IsCloseError(err, websocket.CloseProtocolError) {
			t.Fatalf("socket after failed: %v", err)
		}
	}
}

func TestDDPPingPong(t *testing.T) {
	env := newDDPEnv(t, nil)
	c := env.dial(t, "/websocket")
	c.connect()
	c.send(map[string]any{"msg": "ping", "id": "p-1"})
	if f := c.awaitMsg("pong"); f.raw != `{"msg":"pong","id":"p-1"}` {
		t.Fatalf("pong: %s", f.raw)
	}
	c.send(map[string]any{"msg": "ping"})
	if f := c.awaitMsg("pong"); f.raw != `{"msg":"pong"}` {
		t.Fatalf("pong without id: %s", f.raw)
	}
	c.send(map[string]any{"msg": "pong"}) // ignored
	c.send(map[string]any{"msg": "ping", "id": "p-2"})
	if f := c.awaitMsg("pong"); f.id() != "p-2" {
		t.Fatalf("pong after pong: %s", f.raw)
	}
}

// TestDDPServerHeartbeat: an idle client gets {"msg":"ping"}; answering
// keeps the session; a client that stays silent is disconnected.
func TestDDPServerHeartbeat(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.heartbeat, s.ddp.heartbeatTimeout = 20*time.Millisecond, 40*time.Millisecond })
	live := env.dial(t, "/websocket")
	live.connect()
	for i := 0; i < 3; i++ {
		if f := live.awaitMsg("ping"); f.raw != `{"msg":"ping"}` {
			t.Fatalf("heartbeat: %s", f.raw)
		}
		live.send(map[string]any{"msg": "pong"})
	}
	live.send(map[string]any{"msg": "ping", "id": "still-here"})
	if f := live.awaitMsg("pong"); f.id() != "still-here" {
		t.Fatalf("session did not survive answered heartbeats: %s", f.raw)
	}

	dead := env.dial(t, "/websocket")
	dead.connect()
	dead.awaitMsg("ping") // and never answer
	err := dead.closeErr()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) || !strings.Contains(err.Error(), "heartbeat") {
		t.Fatalf("silent client: %v, want close 1008 heartbeat timeout", err)
	}
}

func TestDDPConnectTimeout(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.connectTimeout = 20 * time.Millisecond })
	c := env.dial(t, "/websocket")
	if err := c.closeErr(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("never connecting: %v", err)
	}
}

func TestDDPSetUpConnectionPresence(t *testing.T) {
	env := newDDPEnv(t, nil)
	v := env.visitor("tok-a", "Ann")
	c := env.dial(t, "/websocket")
	c.connect()
	f := c.call("livechat:setUpConnection", map[string]any{"token": "tok-a"})
	if f.raw != `{"msg":"result","id":"`+f.id()+`"}` {
		t.Fatalf("setUpConnection result %s, want no result key", f.raw)
	}
	if st := env.s.visitorStatus(v.ID); st != "online" {
		t.Fatalf("presence while connected = %q", st)
	}
	// A second connection of the same token; closing one keeps it online.
	c2 := env.dial(t, "/websocket")
	c2.connect()
	c2.ok("livechat:setUpConnection", map[string]any{"token": "tok-a"})
	c2.ws.Close()
	ddpEventually(t, "second connection unbound", func() bool { return env.conns.Load() == 1 })
	if st := env.s.visitorStatus(v.ID); st != "online" {
		t.Fatalf("presence with one connection left = %q", st)
	}
	c.ws.Close()
	ddpEventually(t, "visitor offline after the last connection closed", func() bool {
		return env.s.visitorStatus(v.ID) == "offline" && !env.s.ddpConnected("tok-a")
	})

	// A token not registered yet is accepted (the widget connects first).
	c3 := env.dial(t, "/websocket")
	c3.connect()
	c3.ok("livechat:setUpConnection", map[string]any{"token": "not-yet-registered"})
	// Argument checks.
	c3.fails(400, "livechat:setUpConnection")
	c3.fails(400, "livechat:setUpConnection", "tok-a")
	c3.fails(400, "livechat:setUpConnection", map[string]any{"token": "tok-a", "extra": 1})
	c3.fails(400, "livechat:setUpConnection", map[string]any{"token": 5})
}

// TestDDPStreamRoomMessages: an agent's message posted through the desk
// reaches the subscribed widget connection as a `changed` frame with EJSON
// dates; the visitor's own message comes back too; agents-only events do
// not.
func TestDDPStreamRoomMessages(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-v", "Vera")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	c.ok("livechat:setUpConnection", map[string]any{"token": "tok-v"})
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-v")

	ev := env.agentSays(conv.ID, "amy@x", "Sure, how can I help?")
	f := c.changed(streamRoomMessages)
	event, args := ddpStreamArgs(t, f)
	if event != string(conv.ID) || len(args) != 1 {
		t.Fatalf("frame %s", f.raw)
	}
	msg := args[0].(map[string]any)
	if msg["_id"] != ev.ID || msg["rid"] != string(conv.ID) || msg["msg"] != "Sure, how can I help?" {
		t.Fatalf("message %s", f.raw)
	}
	if u := msg["u"].(map[string]any); u["username"] != "amy" {
		t.Fatalf("author %v", u)
	}
	if ts := ddpEJSONDate(t, msg["ts"]); !ts.Equal(ev.At.Truncate(time.Millisecond)) {
		t.Fatalf("ts %v, want %v", ts, ev.At)
	}
	ddpEJSONDate(t, msg["_updatedAt"])

	// An agents-only note is not delivered; the next visible message is.
	_, _, err := env.d.Post(context.Background(), desk.PostRequest{Conv: conv.ID,
		Author: model.Author{Kind: model.AuthorAgent, ID: "amy@x"},
		Draft:  desk.Draft{Text: "internal note", Visibility: model.VisibleAgents}})
	if err != nil {
		t.Fatal(err)
	}
	// The visitor's own message (posted over REST's helper) is echoed.
	own, err := env.s.postVisitorMessage(context.Background(), v, conv, "client-id-1", "my own words", nil)
	if err != nil {
		t.Fatal(err)
	}
	f = c.changed(streamRoomMessages)
	_, args = ddpStreamArgs(t, f)
	msg = args[0].(map[string]any)
	if msg["_id"] != "client-id-1" || msg["msg"] != "my own words" || msg["token"] != "tok-v" {
		t.Fatalf("own message echo %s (event %s)", f.raw, own.ID)
	}
	if strings.Contains(strings.Join(ddpFramesRaw(c.backlog), "\n"), "internal note") {
		t.Fatal("agents-only note reached the visitor")
	}
}

func ddpFramesRaw(fs []ddpFrame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.raw
	}
	return out
}

// TestDDPTyping: agent typing reaches <rid>/typing as [username, bool]
// (and <rid>/user-activity for newer clients); the widget's typing write
// becomes a desk typing indicator and is not echoed to visitors.
func TestDDPTyping(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-t", "Tia")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	c.mustSub(streamNotifyRoom, string(conv.ID)+"/typing", "tok-t")
	c.mustSub(streamNotifyRoom, string(conv.ID)+"/user-activity", "tok-t")
	busSub := env.d.Bus().SubscribeConv(conv.ID, 16)
	defer busSub.Close()

	f := c.call("stream-notify-room", string(conv.ID)+"/typing", "guest-1", true, map[string]any{"token": "tok-t"})
	if f.has("result") || f.has("error") {
		t.Fatalf("typing write answered %s, want an empty result", f.raw)
	}
	select {
	case n := <-busSub.C():
		if n.Typing == nil || !n.Typing.On || n.Typing.Author.Kind != model.AuthorVisitor || n.Typing.Author.ID != string(v.ID) {
			t.Fatalf("desk notice %+v", n)
		}
	case <-time.After(ddpWait):
		t.Fatal("visitor typing did not reach the desk")
	}

	if err := env.d.Typing(context.Background(), conv.ID, model.Author{Kind: model.AuthorAgent, ID: "amy@x"}, true, "", "test"); err != nil {
		t.Fatal(err)
	}
	// The first typing frame is the agent's: the visitor's own indicator
	// (published first) was not sent back.
	f = c.await(func(f ddpFrame) bool {
		fields, _ := f.m["fields"].(map[string]any)
		ev, _ := fields["eventName"].(string)
		return f.msg() == "changed" && strings.HasSuffix(ev, "/typing")
	})
	if f.raw != `{"msg":"changed","collection":"stream-notify-room","id":"id","fields":{"eventName":"`+string(conv.ID)+`/typing","args":["amy",true]}}` {
		t.Fatalf("agent typing frame %s", f.raw)
	}
	f = c.changed(streamNotifyRoom)
	if ev, args := ddpStreamArgs(t, f); ev != string(conv.ID)+"/user-activity" || args[0] != "amy" || args[1].([]any)[0] != "user-typing" {
		t.Fatalf("user-activity frame %s", f.raw)
	}

	// The newer clients' user-activity write, without a token, uses the
	// connection's setUpConnection token.
	c.ok("livechat:setUpConnection", map[string]any{"token": "tok-t"})
	c.ok("stream-notify-room", string(conv.ID)+"/user-activity", "guest-1", []any{})
	for {
		select {
		case n := <-busSub.C():
			if n.Typing == nil || n.Typing.Author.Kind != model.AuthorVisitor {
				continue // the agent's indicator above
			}
			if n.Typing.On {
				t.Fatalf("desk notice %+v", n)
			}
		case <-time.After(ddpWait):
			t.Fatal("user-activity did not reach the desk")
		}
		break
	}
}

// TestDDPCloseAndAgentNotices: assignment and transfer notices on
// stream-livechat-room (three widget subscriptions, three frames each), and
// the close notice on stream-room-messages.
func TestDDPCloseAndAgentNotices(t *testing.T) {
	env := newDDPEnv(t, nil)
	v := env.visitor("tok-c", "Cal")
	// No agent online: the room starts queued.
	conv, _, err := env.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: System,
		Author: visitorAuthor(v), Events: []desk.Draft{{Kind: model.KindSystem, Subtype: model.SysStarted, Text: "Chat started"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := env.dial(t, "/websocket")
	c.connect()
	for i := 0; i < 3; i++ {
		c.mustSub(streamLivechatRoom, string(conv.ID), "tok-c")
	}
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-c")

	env.online("amy@x") // the desk's queue routing assigns amy
	for i := 0; i < 3; i++ {
		f := c.changed(streamLivechatRoom)
		ev, args := ddpStreamArgs(t, f)
		p := args[0].(map[string]any)
		if ev != string(conv.ID) || p["type"] != "agentData" || p["data"].(map[string]any)["username"] != "amy" {
			t.Fatalf("agentData frame %s", f.raw)
		}
	}
	f := c.changed(streamRoomMessages)
	if _, args := ddpStreamArgs(t, f); args[0].(map[string]any)["t"] != "command" || args[0].(map[string]any)["msg"] != "connected" {
		t.Fatalf("assignment message %s", f.raw)
	}

	// Transfer while no agent is available: agent gone, queued.
	env.d.AgentConnected("amy@x", false)
	if err := env.d.Transfer(context.Background(), conv.ID, "empty", visitorAuthor(v), ""); err != nil {
		t.Fatal(err)
	}
	// One cleared agentData per subscription. (queueData may follow: the
	// desk queues a transferred room only after publishing the transfer,
	// so its position is not always known yet; see TestDDPQueueData.)
	for i := 0; i < 3; i++ {
		f = c.await(func(f ddpFrame) bool {
			return f.msg() == "changed" && f.m["collection"] == streamLivechatRoom && strings.Contains(f.raw, `"agentData"`)
		})
		if _, args := ddpStreamArgs(t, f); args[0].(map[string]any)["type"] != "agentData" || strings.Contains(f.raw, `"data"`) {
			t.Fatalf("cleared agentData %s", f.raw)
		}
	}

	if _, err := env.d.Close(context.Background(), conv.ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	f = c.await(func(f ddpFrame) bool {
		return f.msg() == "changed" && f.m["collection"] == streamRoomMessages && strings.Contains(f.raw, "livechat-close")
	})
	_, args := ddpStreamArgs(t, f)
	closeMsg := args[0].(map[string]any)
	if closeMsg["t"] != "livechat-close" || closeMsg["rid"] != string(conv.ID) {
		t.Fatalf("close notice %s", f.raw)
	}
	ddpEJSONDate(t, closeMsg["ts"])
}

// TestDDPQueueData: a room that is (re)queued gets queueData with its
// spot in the department's queue, shaped as Rocket.Chat EE's
// normalizeQueueInfo (spot, message from rocket.cat, estimated wait).
func TestDDPQueueData(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.cfg.QueueMessage, s.cfg.QueueWaitPerChat = "Please wait", 90*time.Second })
	var convs []model.Conversation
	for _, tok := range []string{"tok-q1", "tok-q2"} {
		v := env.visitor(tok, "")
		conv, evs, err := env.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: System,
			Author: visitorAuthor(v), Events: []desk.Draft{{Kind: model.KindSystem, Subtype: model.SysStarted, Text: "Chat started"}}})
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, conv)
		r := ddpNoticeRender{s: env.s, n: hub.Notice{Conv: conv, Events: evs}}
		got := r.renderLivechat()
		if len(got) != 1 {
			t.Fatalf("payloads %v", got)
		}
		b, _ := ddp.Marshal(got[0])
		if want := `{"type":"queueData","data":{"estimatedWaitTimeSeconds":` + strconv.Itoa(90*len(convs)) +
			`,"message":{"text":"Please wait","user":{"_id":"rocket.cat","username":"rocket.cat"}},"spot":` + strconv.Itoa(len(convs)) + `}}`; string(b) != want {
			t.Fatalf("queueData %s, want %s", b, want)
		}
	}
}

// TestDDPAgentStatusAndQueueMoves: what the bus does not publish is
// polled: the serving agent's presence (agentStatus) and a queued room
// moving up the queue (queueData).
func TestDDPAgentStatusAndQueueMoves(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.roomPoll = 5 * time.Millisecond })
	env.online("ben@x") // ben serves only "sales"
	served := env.visitor("tok-as", "")
	servedRoom, _, err := env.d.Start(context.Background(), desk.StartRequest{Visitor: served.ID, Department: "sales", Origin: System,
		Author: visitorAuthor(served)})
	if err != nil || servedRoom.Agent != "ben@x" {
		t.Fatalf("start: %+v %v", servedRoom, err)
	}
	var queued []model.Conversation
	for _, tok := range []string{"tok-q1", "tok-q2"} {
		v := env.visitor(tok, "")
		c, _, err := env.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Department: "empty", Origin: System,
			Author: visitorAuthor(v)})
		if err != nil || c.State != model.StateQueued {
			t.Fatalf("start queued: %+v %v", c, err)
		}
		queued = append(queued, c)
	}
	c := env.dial(t, "/websocket")
	c.connect()
	c.mustSub(streamLivechatRoom, string(servedRoom.ID), "tok-as")
	c.mustSub(streamLivechatRoom, string(queued[1].ID), "tok-q2")

	env.d.SetAccepting("ben@x", false)
	f := c.await(func(f ddpFrame) bool { return f.msg() == "changed" && strings.Contains(f.raw, "agentStatus") })
	if ev, args := ddpStreamArgs(t, f); ev != string(servedRoom.ID) || args[0].(map[string]any)["status"] != "away" {
		t.Fatalf("agentStatus %s", f.raw)
	}
	// The first queued room leaves the queue: the second is now first.
	if _, err := env.d.Close(context.Background(), queued[0].ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	f = c.await(func(f ddpFrame) bool { return f.msg() == "changed" && strings.Contains(f.raw, "queueData") })
	if ev, args := ddpStreamArgs(t, f); ev != string(queued[1].ID) ||
		args[0].(map[string]any)["data"].(map[string]any)["spot"] != 1.0 {
		t.Fatalf("queueData %s", f.raw)
	}
}

// TestDDPDeleteAndEdit: a deleted message is <rid>/deleteMessage [{_id}];
// an edit re-sends the message.
func TestDDPDeleteAndEdit(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-d", "Dan")
	conv := env.room(v)
	ev, err := env.s.postVisitorMessage(context.Background(), v, conv, "mine-1", "typo", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := env.dial(t, "/websocket")
	c.connect()
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-d")
	c.mustSub(streamNotifyRoom, string(conv.ID)+"/deleteMessage", "tok-d")
	if _, err := env.d.EditEvent(context.Background(), conv.ID, ev.Seq, visitorAuthor(v), "fixed", ""); err != nil {
		t.Fatal(err)
	}
	f := c.changed(streamRoomMessages)
	if _, args := ddpStreamArgs(t, f); args[0].(map[string]any)["msg"] != "fixed" || args[0].(map[string]any)["_id"] != "mine-1" {
		t.Fatalf("edit %s", f.raw)
	}
	ddpEJSONDate(t, f.m["fields"].(map[string]any)["args"].([]any)[0].(map[string]any)["editedAt"])
	if _, err := env.d.DeleteEvent(context.Background(), conv.ID, ev.Seq, visitorAuthor(v), ""); err != nil {
		t.Fatal(err)
	}
	f = c.changed(streamNotifyRoom)
	if f.raw != `{"msg":"changed","collection":"stream-notify-room","id":"id","fields":{"eventName":"`+string(conv.ID)+`/deleteMessage","args":[{"_id":"mine-1"}]}}` {
		t.Fatalf("delete %s", f.raw)
	}
}

// TestDDPSecurity: a token reaches only its own visitor's rooms.
func TestDDPSecurity(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	a := env.visitor("tok-A", "A")
	b := env.visitor("tok-B", "B")
	roomA, roomB := env.room(a), env.room(b)

	c := env.dial(t, "/websocket")
	c.connect()
	c.ok("livechat:setUpConnection", map[string]any{"token": "tok-A"})
	refused := func(name string, params ...any) {
		t.Helper()
		_, f := c.sub(name, params...)
		if f.msg() != "nosub" || f.errCode() != "not-allowed" ||
			f.m["error"].(map[string]any)["errorType"] != "Meteor.Error" {
			t.Fatalf("sub %s %v: %s, want nosub not-allowed", name, params, f.raw)
		}
	}
	for _, name := range []string{streamRoomMessages, streamLivechatRoom} {
		refused(name, string(roomB.ID), ddpWidgetOpts("tok-A"))          // another visitor's room
		refused(name, string(roomB.ID))                                  // no token
		refused(name, string(roomB.ID), false)                           // no token
		refused(name, string(roomB.ID), map[string]any{"args": []any{}}) // no token
		refused(name, "no-such-room", ddpWidgetOpts("tok-A"))
		refused(name, string(roomA.ID), ddpWidgetOpts("unknown-token"))
	}
	refused(streamNotifyRoom, string(roomB.ID)+"/typing", ddpWidgetOpts("tok-A"))
	refused(streamNotifyRoom, string(roomB.ID)+"/deleteMessage", map[string]any{"args": []any{map[string]any{"token": "tok-A"}}})

	// Cannot send into B's room, nor read its agent data, nor close it.
	c.fails("cannot-access-room", "sendMessageLivechat", map[string]any{"_id": "x1", "rid": string(roomB.ID), "msg": "hi", "token": "tok-A"})
	c.fails("error-invalid-room", "livechat:getAgentData", map[string]any{"roomId": string(roomB.ID), "token": "tok-A"})
	if r := c.ok("livechat:closeByVisitor", map[string]any{"roomId": string(roomB.ID), "token": "tok-A"}); r != false {
		t.Fatalf("closeByVisitor of another's room = %v", r)
	}
	c.fails("error-invalid-room", "livechat:setDepartmentForVisitor", map[string]any{"roomId": string(roomB.ID), "visitorToken": "tok-A", "departmentId": "sales"})
	if r := c.ok("livechat:saveSurveyFeedback", "tok-A", string(roomB.ID), []any{map[string]any{"name": "satisfaction", "value": "5"}}); r != nil {
		t.Fatalf("survey of another's room = %v", r)
	}

	// Typing into B's room with A's token is dropped; B's room sees only
	// what follows.
	busB := env.d.Bus().SubscribeConv(roomB.ID, 16)
	defer busB.Close()
	c.ok("stream-notify-room", string(roomB.ID)+"/typing", "A", true, map[string]any{"token": "tok-A"})
	env.agentSays(roomB.ID, "amy@x", "marker")
	select {
	case n := <-busB.C():
		if n.Typing != nil {
			t.Fatalf("A's typing reached B's room: %+v", n.Typing)
		}
	case <-time.After(ddpWait):
		t.Fatal("no notice in B's room")
	}

	// Messages never leak across rooms: A follows its room, B's message
	// first, then A's.
	c.mustSub(streamRoomMessages, string(roomA.ID), "tok-A")
	env.agentSays(roomB.ID, "amy@x", "for B only")
	env.agentSays(roomA.ID, "amy@x", "for A")
	f := c.changed(streamRoomMessages)
	if ev, args := ddpStreamArgs(t, f); ev != string(roomA.ID) || args[0].(map[string]any)["msg"] != "for A" {
		t.Fatalf("first message on A's connection: %s", f.raw)
	}
	// The room state of B is untouched.
	if got, _ := env.st.Conversation(context.Background(), roomB.ID); !got.Active() {
		t.Fatal("B's room was closed by A")
	}
}

// TestDDPUnsub: unsub answers nosub (unknown ids too) and stops delivery;
// the bus subscription goes with the last DDP subscription of the room.
func TestDDPUnsub(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-u", "Uma")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	base := env.d.Bus().Subscribers()
	s1 := c.mustSub(streamRoomMessages, string(conv.ID), "tok-u")
	s2 := c.mustSub(streamLivechatRoom, string(conv.ID), "tok-u")
	if n := env.d.Bus().Subscribers(); n != base+1 {
		t.Fatalf("bus subscribers = %d, want %d (one per room per connection)", n, base+1)
	}
	c.send(map[string]any{"msg": "unsub", "id": s1})
	if f := c.awaitMsg("nosub"); f.raw != `{"msg":"nosub","id":"`+s1+`"}` {
		t.Fatalf("unsub: %s", f.raw)
	}
	c.send(map[string]any{"msg": "unsub", "id": "never-subscribed"})
	if f := c.awaitMsg("nosub"); f.id() != "never-subscribed" {
		t.Fatalf("unsub unknown: %s", f.raw)
	}
	env.agentSays(conv.ID, "amy@x", "after unsub")
	c.send(map[string]any{"msg": "unsub", "id": s2})
	c.awaitMsg("nosub")
	ddpEventually(t, "bus subscription released", func() bool { return env.d.Bus().Subscribers() == base })
	for _, f := range c.backlog {
		if f.msg() == "changed" && f.m["collection"] == streamRoomMessages {
			t.Fatalf("message delivered after unsub: %s", f.raw)
		}
	}
	// A resubscription (the widget's initRoom churn) works again.
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-u")
	env.agentSays(conv.ID, "amy@x", "again")
	if _, args := ddpStreamArgs(t, c.changed(streamRoomMessages)); args[0].(map[string]any)["msg"] != "again" {
		t.Fatal("no delivery after resubscribe")
	}
}

// TestDDPSubscriptionForms: a duplicate sub id is ignored (Meteor), an
// unknown publication is nosub 404, useCollection:true gets Rocket.Chat's
// `added` first, and <rid>/webrtc is readable without a token.
func TestDDPSubscriptionForms(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-f", "Flo")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	_, f := c.sub("meteor_autoupdate_clientVersions")
	if f.msg() != "nosub" || f.errCode() != 404.0 ||
		f.m["error"].(map[string]any)["message"] != "Subscription 'meteor_autoupdate_clientVersions' not found [404]" {
		t.Fatalf("unknown publication: %s", f.raw)
	}
	_, f = c.sub(streamRoomMessages, "", ddpWidgetOpts("tok-f"))
	if f.errCode() != "invalid-event-name" {
		t.Fatalf("empty eventName: %s", f.raw)
	}
	id, f := c.sub(streamRoomMessages, string(conv.ID), map[string]any{"useCollection": true,
		"args": []any{map[string]any{"visitorToken": "tok-f"}}})
	if f.msg() != "ready" {
		t.Fatalf("useCollection sub: %s", f.raw)
	}
	added := c.awaitMsg("added")
	if added.raw != `{"msg":"added","collection":"stream-room-messages","id":"id","fields":{"eventName":"`+string(conv.ID)+`"}}` {
		t.Fatalf("added: %s", added.raw)
	}
	// The same id again is ignored: no second ready.
	c.send(map[string]any{"msg": "sub", "id": id, "name": streamRoomMessages, "params": []any{string(conv.ID), ddpWidgetOpts("tok-f")}})
	c.send(map[string]any{"msg": "ping", "id": "after-dup"})
	c.await(func(f ddpFrame) bool { return f.msg() == "pong" })
	for _, f := range c.backlog {
		if f.msg() == "ready" {
			t.Fatalf("duplicate sub answered: %s", f.raw)
		}
	}
	_, f = c.sub(streamNotifyRoom, string(conv.ID)+"/webrtc")
	if f.msg() != "ready" {
		t.Fatalf("webrtc sub: %s", f.raw)
	}
}

// TestDDPBadFrames: malformed frames get Meteor's error frames and the
// session goes on; an oversize frame is refused without reading it as DDP.
func TestDDPBadFrames(t *testing.T) {
	env := newDDPEnv(t, nil)
	c := env.dial(t, "/websocket")
	c.recv() // server_id
	for _, tc := range []struct{ in, reason string }{
		{`not json`, "Bad request"},
		{`[1,2]`, "Bad request"},
		{`null`, "Bad request"},
		{`{"foo":1}`, "Bad request"},
		{`{"msg":""}`, "Bad request"},
		{`{"msg":"method","params":[{"$type":"oid","$value":"x"}]}`, "Parse error"},
		{`{"msg":"method","params":[{"$date":"never"}]}`, "Parse error"},
	} {
		c.sendRaw(tc.in)
		if f := c.awaitMsg("error"); f.m["reason"] != tc.reason {
			t.Fatalf("%s: %s, want %s", tc.in, f.raw, tc.reason)
		}
	}
	c.connect()
	for _, tc := range []struct{ in, reason string }{
		{`{"msg":"method","method":"x","params":[]}`, "Malformed method invocation"},           // no id
		{`{"msg":"method","id":"m1","params":[]}`, "Malformed method invocation"},              // no method
		{`{"msg":"method","id":"m1","method":"x","params":{}}`, "Malformed method invocation"}, // params not an array
		{`{"msg":"method","id":"m1","method":"x","randomSeed":5}`, "Malformed method invocation"},
		{`{"msg":"sub","id":"s1","params":[]}`, "Malformed subscription"},
		{`{"msg":"sub","id":7,"name":"x"}`, "Malformed subscription"},
		{`{"msg":"sub","id":"s1","name":"x","params":"y"}`, "Malformed subscription"},
		{`{"msg":"teleport"}`, "Bad request"},
		{`{"msg":7}`, "Bad request"},
	} {
		c.sendRaw(tc.in)
		f := c.awaitMsg("error")
		if f.m["reason"] != tc.reason || !f.has("offendingMessage") {
			t.Fatalf("%s: %s, want %s with offendingMessage", tc.in, f.raw, tc.reason)
		}
	}
	// Unknown method: 404 result, and updated.
	f := c.fails(404, "no:such:method")
	if f.m["error"].(map[string]any)["reason"] != "Method 'no:such:method' not found" {
		t.Fatalf("unknown method: %s", f.raw)
	}
	// Oversize method frame: an error frame and a 413 result; the session
	// lives on.
	big := `{"msg":"method","method":"sendMessageLivechat","id":"big-1","params":[{"msg":"` + strings.Repeat("x", ddpTestMaxFrame) + `"}]}`
	c.sendRaw(big)
	f = c.awaitMsg("error")
	if f.m["reason"] != "Frame too large" || f.m["offendingMessage"].(map[string]any)["id"] != "big-1" {
		t.Fatalf("oversize: %s", f.raw)
	}
	f = c.await(func(f ddpFrame) bool { return f.msg() == "result" && f.id() == "big-1" })
	if f.errCode() != 413.0 {
		t.Fatalf("oversize result: %s", f.raw)
	}
	bigSub := `{"msg":"sub","name":"stream-room-messages","id":"big-2","params":["` + strings.Repeat("r", ddpTestMaxFrame) + `"]}`
	c.sendRaw(bigSub)
	if f := c.await(func(f ddpFrame) bool { return f.msg() == "nosub" && f.id() == "big-2" }); f.errCode() != 413.0 {
		t.Fatalf("oversize sub: %s", f.raw)
	}
	c.send(map[string]any{"msg": "ping", "id": "alive"})
	if f := c.awaitMsg("pong"); f.id() != "alive" {
		t.Fatalf("after bad frames: %s", f.raw)
	}
	// Beyond the hard cap the socket is closed (1009), not read.
	c.sendRaw(`"` + strings.Repeat("z", ddpHardFrameCap+10) + `"`)
	if err := c.closeErr(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("huge frame: %v", err)
	}
}

// TestDDPShutdown: Run returns after its context ends, every session is
// closed (going away) and the connection gauge is back to zero.
func TestDDPShutdown(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-s", "Sol")
	conv := env.room(v)
	var clients []*ddpClient
	for i := 0; i < 3; i++ {
		c := env.dial(t, "/websocket")
		c.connect()
		c.ok("livechat:setUpConnection", map[string]any{"token": "tok-s"})
		c.mustSub(streamRoomMessages, string(conv.ID), "tok-s")
		clients = append(clients, c)
	}
	if n := env.conns.Load(); n != 3 {
		t.Fatalf("connections = %d", n)
	}
	env.stop()
	for _, c := range clients {
		if err := c.closeErr(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("client close: %v", err)
		}
	}
	if n := env.conns.Load(); n != 0 {
		t.Fatalf("connections after Run returned = %d", n)
	}
	if env.s.ddpConnected("tok-s") || env.s.visitorStatus(v.ID) != "offline" {
		t.Fatal("visitor still bound after shutdown")
	}
	// New sockets are refused once Run has returned.
	ws, _, err := websocket.DefaultDialer.Dial(env.url("/websocket"), nil)
	if err == nil {
		defer ws.Close()
		_, _, err = ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("socket after shutdown: %v", err)
		}
	}
}

// TestDDPSockJS: the SockJS websocket transport carries the same DDP in
// its framing ("o", a["…"], client frames as JSON arrays of strings).
func TestDDPSockJS(t *testing.T) {
	env := newDDPEnv(t, nil)
	c := env.dial(t, "/sockjs/123/abcdefgh/websocket")
	if f := c.recv(); f.raw != "o" {
		t.Fatalf("first sockjs frame %q", f.raw)
	}
	if f := c.recv(); f.raw != `{"server_id":"0"}` {
		t.Fatalf("welcome %q", f.raw)
	}
	c.connect()
	c.send(map[string]any{"msg": "ping", "id": "s"})
	if f := c.awaitMsg("pong"); f.id() != "s" {
		t.Fatalf("pong %s", f.raw)
	}
	// Meteor's raw alias under /sockjs.
	raw := env.dial(t, "/sockjs/websocket")
	raw.recv()
	raw.connect()
	// /sockjs/info.
	resp, err := env.srv.Client().Get(env.srv.URL + "/sockjs/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info["websocket"] != true {
		t.Fatalf("sockjs info: %v %v", info, err)
	}
	// A broken SockJS frame closes the session.
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("{not sockjs")); err != nil {
		t.Fatal(err)
	}
	if err := c.closeErr(); !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Fatalf("broken sockjs frame: %v", err)
	}
}

func TestDDPErrorMapping(t *testing.T) {
	env := newDDPEnv(t, nil)
	cases := []struct {
		err  error
		code any
	}{
		{errInvalidToken, "invalid-token"},
		{&matchError{msg: "x"}, 400},
		{desk.ErrInactive, "room-closed"},
		{desk.ErrTooLarge, "message-length-exceeds-character-limit"},
		{errors.New("disk on fire"), 500},
	}
	for _, tc := range cases {
		if got := env.s.meteorError(tc.err, nil, "test"); got.Code != tc.code {
			t.Errorf("meteorError(%v) = %v, want %v", tc.err, got.Code, tc.code)
		}
	}
}

// TestDDPFellBehindClosesSession: a session whose room feed the bus cut
// off (more than ddpBusQueue notices waiting) is closed with "fell
// behind", so that the widget reconnects and reloads, instead of going on
// with a gap; the notices it did take are delivered first.
func TestDDPFellBehindClosesSession(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("tok-fb", "Fay")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-fb")
	env.s.ddp.mu.Lock()
	var ss *ddpSession
	for s := range env.s.ddp.sessions {
		ss = s
	}
	env.s.ddp.mu.Unlock()
	// Delivery waits for the session's lock: hold it while the room's
	// notices pile up past the queue.
	ss.mu.Lock()
	for range ddpBusQueue + 2 {
		env.d.Bus().Publish(hub.Notice{Conv: conv})
	}
	ss.mu.Unlock()
	err := c.closeErr()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "fell behind" {
		t.Fatalf("close: %v, want 1008 fell behind", err)
	}
}
