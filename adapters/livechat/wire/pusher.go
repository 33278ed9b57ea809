package wire

// Pusher sends the push frames of one RTM session, the same way for the
// Agent and the Customer Chat API: both clients embed it, so that the
// login's narrowing of pushes and the encoding of each push live in one
// place.
type Pusher struct {
	// Version is the connection's API version, from its URL.
	Version string
	// Only is the set of pushes the client's login asked for; nil means
	// every push. Set by login before the session is logged in.
	Only map[string]bool
	// Web is set for a Web API request: it has no socket, so it gets no
	// pushes.
	Web bool
	// Out writes a frame to the session; a full queue closes the session,
	// so its error needs no handling here.
	Out func([]byte) error
	// Log reports a push that could not be encoded.
	Log func(error)
}

// wants says whether the session gets pushes of action.
func (p *Pusher) wants(action string) bool {
	return !p.Web && (p.Only == nil || p.Only[action])
}

// Push sends a push frame unless the client's login narrowed its pushes.
func (p *Pusher) Push(requestID, action string, payload any) {
	if !p.wants(action) {
		return
	}
	push := NewPush(p.Version, requestID, action, payload)
	p.send(EncodePush(&push))
}

// PushEvent is Push of an incoming_event payload, encoded without boxing
// it (EncodeEventPush): two of the pushes of every relayed message.
func (p *Pusher) PushEvent(requestID string, e *IncomingEvent) {
	const action = "incoming_event"
	if !p.wants(action) {
		return
	}
	p.send(EncodeEventPush(p.Version, requestID, action, e))
}

func (p *Pusher) send(f []byte, err error) {
	if err != nil {
		p.Log(err)
		return
	}
	_ = p.Out(f)
}
