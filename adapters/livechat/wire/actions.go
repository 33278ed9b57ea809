package wire

import (
	"context"
	"fmt"
	"sort"
)

// Handler answers one action for a caller C: an RTM connection, a Web API
// request, a test. It knows nothing of the transport: it reads the request,
// acts, and returns the response payload (nil means {}) or an error
// (*Error, a core error, anything: see FromError).
type Handler[C any] func(ctx context.Context, c C, req *Request) (any, error)

// Action is one entry of a Table.
type Action[C any] struct {
	// Public actions may run before the caller is authenticated (login,
	// ping). Every other action then fails with an authentication error.
	Public bool
	Handle Handler[C]
}

// Table maps action names to handlers. The customer RTM, the agent RTM and
// the Web API each build one; a new action is one more entry.
type Table[C any] map[string]Action[C]

// Names lists the table's actions, sorted (for docs and logs).
func (t Table[C]) Names() []string {
	out := make([]string, 0, len(t))
	for n := range t {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Dispatched lists the table's actions as "action <name>", with extra
// (actions served outside the table, such as the Web API's upload_file)
// first: surfaces report it so that the authorization matrix tests check
// every entry.
func (t Table[C]) Dispatched(extra ...string) []string {
	out := make([]string, 0, len(extra)+len(t))
	for _, n := range extra {
		out = append(out, "action "+n)
	}
	for _, n := range t.Names() {
		out = append(out, "action "+n)
	}
	return out
}

// Dispatch runs req's handler and turns its outcome into a response. An
// unknown action is a validation error ("Unsupported action"): §2.9 has no
// dedicated type, and validation is what clients treat as "do not retry".
// A handler panic becomes an internal error rather than a dead process.
// onErr, if set, is told about unexpected errors (for logging).
func (t Table[C]) Dispatch(ctx context.Context, c C, authenticated bool, req *Request, onErr func(error)) (resp Response) {
	a, ok := t[req.Action]
	if !ok {
		return Fail(req, Errorf(Validation, "Unsupported action"))
	}
	if !a.Public && !authenticated {
		return Fail(req, Errorf(Authentication, "Authentication required: log in first"))
	}
	defer func() {
		if r := recover(); r != nil {
			if onErr != nil {
				onErr(fmt.Errorf("action %s panicked: %v", req.Action, r))
			}
			resp = Fail(req, NewError(Internal))
		}
	}()
	payload, err := a.Handle(ctx, c, req)
	if err != nil {
		we, unexpected := FromError(err)
		if unexpected && onErr != nil {
			onErr(fmt.Errorf("action %s: %w", req.Action, err))
		}
		return Fail(req, we)
	}
	return OK(req, payload)
}
