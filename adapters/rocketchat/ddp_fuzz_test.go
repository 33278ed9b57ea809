package rocketchat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// FuzzDDPSession sends arbitrary frames to a live DDP session on a real
// desk: whatever a frame holds, the server never panics, every frame it
// sends back is valid JSON, and the session still answers a ping after it
// (a frame that legitimately ends the session, such as a connect with a
// bad version, is followed by a new connection).
func FuzzDDPSession(f *testing.F) {
	env := newDDPEnv(f, func(s *Surface) { s.ddp.offlineMinInterval = 0 })
	env.online("amy@x")
	v := env.visitor("tok-fz", "Fuzz")
	room := string(env.room(v).ID)

	var ws *websocket.Conn
	dial := func(t testing.TB) {
		if ws != nil {
			ws.Close()
		}
		var err error
		ws, _, err = websocket.DefaultDialer.Dial(env.url("/websocket"), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"msg":"connect","version":"1","support":["1"]}`))
	}
	f.Cleanup(func() {
		if ws != nil {
			ws.Close()
		}
	})
	dial(f)

	tok := `{"token":"tok-fz","visitorToken":"tok-fz"}`
	seeds := []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"msg":1}`, `{"msg":"connect","version":"9","support":["9"]}`,
		`{"msg":"ping","id":{"a":1}}`, `{"msg":"pong"}`, `{"msg":"unsub","id":1}`, `{"msg":"unsub","id":"x"}`,
		`{"msg":"method","id":"1","method":"livechat:setUpConnection","params":[{"token":"tok-fz"}]}`,
		`{"msg":"method","id":"2","method":"stream-notify-room","params":["` + room + `/typing","g",true,{"token":"tok-fz"}]}`,
		`{"msg":"method","id":"3","method":"sendMessageLivechat","params":[{"_id":"fz1","rid":"` + room + `","msg":"hi","token":"tok-fz"}]}`,
		`{"msg":"method","id":"4","method":"livechat:getInitialData","params":["tok-fz","sales"]}`,
		`{"msg":"method","id":"5","method":"livechat:registerGuest","params":[{"token":"tok-fz","customFields":[{"key":"k","value":"v"},1,null]}]}`,
		`{"msg":"method","id":"6","method":"livechat:loadHistory","params":[{"token":"tok-fz","rid":"` + room + `","end":{"$date":1e12},"ls":{"$date":0},"limit":1e9}]}`,
		`{"msg":"method","id":"7","method":"livechat:getAgentData","params":[{"roomId":"` + room + `","token":"tok-fz"}]}`,
		`{"msg":"method","id":"8","method":"livechat:pageVisited","params":["tok-fz","` + room + `",{"change":"url","title":"t","location":{"href":{"$binary":"AA=="}}}]}`,
		`{"msg":"method","id":"9","method":"livechat:saveSurveyFeedback","params":["tok-fz","` + room + `",[{"name":"satisfaction","value":"5"}]]}`,
		`{"msg":"method","id":"10","method":"livechat:setCustomField","params":["tok-fz","k",{"$InfNaN":1}]}`,
		`{"msg":"method","id":"11","method":"livechat:startFileUploadRoom","params":[null,"tok-fz"]}`,
		`{"msg":"method","id":"12","method":"livechat:sendOfflineMessage","params":[{"name":"n","email":"a@b.co","message":"m"}]}`,
		`{"msg":"method","id":"13","method":"livechat:setDepartmentForVisitor","params":[{"roomId":"` + room + `","visitorToken":"tok-fz","departmentId":"sales"}]}`,
		`{"msg":"method","id":"14","method":"livechat:getNextAgent","params":[{"token":"tok-fz","department":"x"}]}`,
		`{"msg":"method","id":"15","method":"UserPresence:away","params":[{"visitor":"tok-fz"}]}`,
		`{"msg":"method","id":"16","method":"livechat:loginByToken","params":[{"$escape":{"$date":1}}]}`,
		`{"msg":"sub","id":"s1","name":"stream-room-messages","params":["` + room + `",` + tok + `]}`,
		`{"msg":"sub","id":"s2","name":"stream-notify-room","params":["` + room + `/typing",{"useCollection":true,"args":[` + tok + `]}]}`,
		`{"msg":"sub","id":"s3","name":"stream-livechat-room","params":["` + room + `",true]}`,
		`{"msg":"sub","id":"s4","name":"stream-livechat-room","params":[{"$date":5},{"args":"x"}]}`,
		`{"msg":"method","id":"17","method":"livechat:closeByVisitor","params":[{"roomId":"` + room + `","token":"tok-fz"}]}`,
		`{"msg":"method","id":"18","method":"sendMessageLivechat","params":[{"_id":"fz2","rid":"new-room-fz","msg":"again","token":"tok-fz"},{"agentId":"a","username":"b"}]}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame string) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			dial(t)
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"msg":"ping","id":"fuzz-alive"}`))
		_ = ws.SetReadDeadline(time.Now().Add(ddpWait))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseProtocolError, websocket.CloseMessageTooBig) {
					dial(t) // a failed connect, a frame over the hard cap
					return
				}
				t.Fatalf("session died on %q: %v", frame, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("server sent invalid JSON %q after %q", b, frame)
			}
			if m["msg"] == "pong" && m["id"] == "fuzz-alive" {
				return
			}
			if m["msg"] == "error" && m["reason"] == "Already connected" && !strings.Contains(frame, "connect") {
				t.Fatalf("unexpected %s after %q", b, frame)
			}
		}
	})
}
