package rocketchat

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"chatgate/adapters/internal/ddp"
	"chatgate/core/model"
)

// renderedMap is the message renderMessage makes of e, decoded from its
// DDP form (dates as time.Time, numbers as float64), or nil.
func renderedMap(t testing.TB, s *Surface, e *model.Event) map[string]any {
	t.Helper()
	m := s.renderMessage(e)
	if m == nil {
		return nil
	}
	b, err := m.AppendEJSON(nil)
	if err != nil {
		t.Fatalf("encode %s: %v", e.ID, err)
	}
	v, err := ddp.Unmarshal(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v.(map[string]any)
}

// messageSetup is a room with a named visitor, an online agent and
// uploads, for rendering events of every kind.
type messageSetup struct {
	env *ddpEnv
	v   model.Visitor
	c   model.Conversation
}

func newMessageSetup(t testing.TB) messageSetup {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	v := env.visitor("msg-token", "Vera <Visitor> & \"co\"")
	return messageSetup{env: env, v: v, c: env.room(v)}
}

// messageEvent is the event a case (or a fuzz input) describes. kind,
// sub and who pick from the lists below; flags: 1 edited, 2 deleted,
// 4 agents only, 8 a client's id, 16 edited by an agent, 32 an upload of
// this surface.
func (ms messageSetup) messageEvent(kind, sub, who, flags uint8, text, name, ct string, size int64, at time.Time) model.Event {
	kinds := []model.EventKind{model.KindMessage, model.KindFile, model.KindSystem, model.KindForm, model.KindRich,
		model.KindAnnotation, model.KindCustom}
	subs := []string{model.SysStarted, model.SysAssigned, model.SysClosed, model.SysTransferred,
		model.SysWelcome, model.SysTranscript, model.SysQueued, "other"}
	authors := []model.Author{
		{Kind: model.AuthorVisitor, ID: string(ms.v.ID)},
		{Kind: model.AuthorVisitor, ID: string(ms.v.ID), Name: name},
		{Kind: model.AuthorAgent, ID: "amy@x"},
		{Kind: model.AuthorAgent, ID: "zed@x", Name: name}, // not an agent of this node
		{Kind: model.AuthorAgent, ID: "zed@x"},
		model.System,
	}
	a := authors[int(who)%len(authors)]
	e := model.Event{Conv: ms.c.ID, Seq: 7, ID: "EV" + strconv.Itoa(int(kind)), At: at, Kind: kinds[int(kind)%len(kinds)],
		Author: a, Text: text, Visibility: model.VisibleAll}
	if e.Kind == model.KindSystem {
		e.Subtype = subs[int(sub)%len(subs)]
		byKinds := []string{"visitor", "agent", "system", ""}
		e.Vars = map[string]string{"by_kind": byKinds[int(sub/8)%len(byKinds)], "by_id": a.ID, "reason": name,
			"agent_id": "amy@x", "agent_name": name, "to_agent": "ben@x", "comment": text,
			"visitor_id": string(ms.v.ID), "visitor_name": name}
		if sub&32 != 0 {
			e.Vars["to_department"], e.Vars["from_department"] = "sales", "empty"
			delete(e.Vars, "to_agent")
		}
		if sub&64 != 0 {
			delete(e.Vars, "agent_id")
			e.Vars["reason"] = ""
		}
	}
	if flags&1 != 0 {
		e.EditedAt, e.EditedBy = at.Add(1500*time.Millisecond), &model.Author{Kind: model.AuthorVisitor, ID: string(ms.v.ID)}
		if flags&16 != 0 {
			e.EditedBy = &model.Author{Kind: model.AuthorAgent, ID: "amy@x", Name: name}
		}
	}
	if flags&2 != 0 {
		e.Deleted = true
	}
	if flags&4 != 0 {
		e.Visibility = model.VisibleAgents
	}
	if flags&8 != 0 {
		e.ClientKey = "client-" + name
	}
	switch e.Kind {
	case model.KindFile:
		e.File = &model.File{Name: name, URL: "https://cdn.example/" + name, ContentType: ct, Size: size, Width: 640, Height: int(size % 3)}
		if flags&32 != 0 {
			e.File.URL = "http://gw.example" + uploadURLPath("up1", name)
		}
	case model.KindForm:
		answer, _ := json.Marshal(text)
		e.Form = &model.Form{Fields: []model.FormField{{Label: name, Answer: answer}, {Label: "Empty"}}}
	case model.KindRich:
		e.Custom, _ = json.Marshal(map[string]any{"elements": []any{map[string]any{"title": text, "subtitle": name,
			"buttons": []any{map[string]any{"text": name}}}}})
	case model.KindCustom:
		e.Custom = json.RawMessage(`{"a":1}`)
	}
	return e
}

// compareMessage checks that the direct writer and the map path give the
// same bytes for e, in every form a message is sent in: a stream frame
// (as the feeds write it, and under a room alias), the DDP method's result, a REST answer (also
// with fileUpload, and as upload's whole answer) and encoding/json.
func compareMessage(t *testing.T, s *Surface, e *model.Event) {
	t.Helper()
	direct, old := s.renderMessage(e), s.renderMessageMap(e)
	if (direct == nil) != (old == nil) {
		t.Fatalf("direct %v, map %v", direct, old)
	}
	if direct == nil {
		return
	}
	same := func(form string, a, b []byte, errA, errB error) {
		t.Helper()
		if (errA == nil) != (errB == nil) || !bytes.Equal(a, b) {
			t.Errorf("%s:\ndirect %s (%v)\nmap    %s (%v)", form, a, errA, b, errB)
		}
	}
	a, errA := ddp.StreamChanged(streamRoomMessages, string(e.Conv), []any{direct})
	b, errB := ddp.StreamChanged(streamRoomMessages, string(e.Conv), []any{old})
	same("stream frame", a, b, errA, errB)
	a, errA = ddp.StreamChangedArg(streamRoomMessages, string(e.Conv), direct)
	same("stream frame (StreamChangedArg)", a, b, errA, errB)

	aliased := copyMap(old)
	aliased["rid"] = "alias-rid"
	a, errA = ddp.StreamChanged(streamRoomMessages, "alias-rid", []any{direct.withRid("alias-rid")})
	b, errB = ddp.StreamChanged(streamRoomMessages, "alias-rid", []any{aliased})
	same("aliased frame", a, b, errA, errB)

	method := *direct
	method.method, method.newRoom = true, e.Seq%2 == 1
	result := copyMap(old)
	result["newRoom"], result["showConnecting"] = method.newRoom, false
	a, errA = ddp.Marshal(ddp.Obj{{Key: "msg", Value: "result"}, {Key: "id", Value: "1"}, {Key: "result", Value: &method}})
	b, errB = ddp.Marshal(ddp.Obj{{Key: "msg", Value: "result"}, {Key: "id", Value: "1"}, {Key: "result", Value: result}})
	same("method result", a, b, errA, errB)

	a, errA = restBody(map[string]any{"message": direct, "success": true})
	b, errB = restBody(map[string]any{"message": old, "success": true})
	same("REST answer", a, b, errA, errB)
	b2, errB2 := json.Marshal(isoDates(map[string]any{"message": old, "success": true}))
	same("REST answer against encoding/json", a, b2, errA, errB2)
	a, errA = json.Marshal(direct)
	b, errB = json.Marshal(isoDates(old))
	same("encoding/json", a, b, errA, errB)

	up := *direct
	up.fileUpload = map[string]any{"publicFilePath": "http://gw.example/file-upload/up1/x", "type": "image/png", "size": int64(3)}
	up.method, up.answer = true, true
	whole := copyMap(old)
	whole["fileUpload"] = up.fileUpload
	whole["newRoom"], whole["showConnecting"], whole["success"] = false, false, true
	a, errA = restBody(&up)
	b, errB = restBody(whole)
	same("upload answer", a, b, errA, errB)
}

// TestMessageBytesAsMap: the direct writer's bytes are the map path's for
// every kind of message the surface renders: chat messages of visitors
// (with and without a name), agents (known and not), files (this
// surface's uploads: image, audio, video, other; other surfaces' links),
// every system message, forms, rich messages, annotations, edited and
// deleted ones, client ids, unicode and characters JSON escapes.
func TestMessageBytesAsMap(t *testing.T) {
	ms := newMessageSetup(t)
	at := time.Date(2026, 12, 6, 18, 0, 0, 123456789, time.UTC)
	texts := []string{"hello", "", "ünïcødé ✓ 日本 🎉", "<b>&amp;</b> \"q\" \\ \n\t\u0001 \u2028\u2029", "\xff\xfe bad utf-8"}
	cts := []string{"image/png", "audio/ogg", "video/mp4", "application/pdf", ""}
	n := 0
	for kind := uint8(0); kind < 7; kind++ {
		for sub := uint8(0); sub < 8; sub++ {
			if kind != 2 && sub > 0 {
				continue
			}
			for _, subHigh := range []uint8{0, 8, 16, 24, 32, 64} {
				if kind != 2 && subHigh > 0 {
					continue
				}
				for who := uint8(0); who < 6; who++ {
					for _, flags := range []uint8{0, 1, 2, 3, 4, 8, 17, 32, 33, 34} {
						text, ct := texts[n%len(texts)], cts[n%len(cts)]
						n++
						e := ms.messageEvent(kind, sub|subHigh, who, flags, text, texts[(n+1)%len(texts)], ct, int64(n), at)
						t.Run(strconv.Itoa(n), func(t *testing.T) { compareMessage(t, ms.env.s, &e) })
					}
				}
			}
		}
	}
}

// TestMessageDateOutOfRange: a date JavaScript cannot hold fails the
// frame's encoding on both paths (never a wrong date).
func TestMessageDateOutOfRange(t *testing.T) {
	ms := newMessageSetup(t)
	e := ms.messageEvent(0, 0, 2, 0, "x", "y", "", 0, time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := ddp.StreamChanged(streamRoomMessages, "r", []any{ms.env.s.renderMessage(&e)}); err == nil {
		t.Error("a year 300000 date encoded")
	}
	compareMessage(t, ms.env.s, &e)
}

// FuzzMessageBytes compares the direct writer with the map path for
// events built from the fuzzer's choices and strings.
func FuzzMessageBytes(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint8(1), uint8(0), "hi", "Vera", "", int64(0), int64(1733490000000))
	f.Add(uint8(1), uint8(0), uint8(2), uint8(32), "a <pic>", "ü.png", "image/png", int64(12), int64(1733490000001))
	f.Add(uint8(2), uint8(35), uint8(3), uint8(1), "why", "Zed \u2028", "", int64(0), int64(-1))
	f.Add(uint8(3), uint8(0), uint8(0), uint8(17), "\"a\"", "Q", "", int64(0), int64(0))
	ms := newMessageSetup(f)
	f.Fuzz(func(t *testing.T, kind, sub, who, flags uint8, text, name, ct string, size, at int64) {
		e := ms.messageEvent(kind, sub, who, flags, text, name, ct, size, time.UnixMilli(at).UTC())
		compareMessage(t, ms.env.s, &e)
	})
}
