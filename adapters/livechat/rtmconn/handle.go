package rtmconn

import (
	"context"
	"strconv"
	"strings"
	"time"

	"chatgate/adapters/livechat/wire"
)

// Limits are what Handle enforces on one request.
type Limits struct {
	MaxFrame int           // larger frames answer entity_too_large
	Timeout  time.Duration // bounds one action (§2.2)
	Version  string        // the connection's API version, from the URL
	Versions []string      // the versions served, oldest first
	// Deadlines, if set, gives the action its timeout context, shared
	// with the connection's other requests (see Deadlines); else each
	// action gets a context.WithTimeout of its own.
	Deadlines *Deadlines
}

// Handle answers one request frame: it checks size, envelope and version,
// runs dispatch under the request timeout and encodes the response. It
// never panics on input and always returns a response frame; logErr hears
// of responses that could not be encoded.
func Handle(ctx context.Context, frame []byte, l Limits, dispatch func(context.Context, *wire.Request) wire.Response, logErr func(error)) []byte {
	var resp wire.Response
	if len(frame) > l.MaxFrame {
		resp = wire.Fail(wire.PeekRequest(frame), wire.Errorf(wire.EntityTooLarge, "Frame exceeds %d bytes", l.MaxFrame))
	} else if req, werr := wire.DecodeRequest(frame); werr != nil {
		resp = wire.Fail(req, werr)
	} else if werr := CheckVersion(l.Version, req.Version, l.Versions); werr != nil {
		resp = wire.Fail(req, werr)
	} else {
		if l.Deadlines != nil {
			resp = dispatch(l.Deadlines.Context(ctx, l.Timeout), req)
		} else {
			rctx, cancel := context.WithTimeout(ctx, l.Timeout)
			resp = dispatch(rctx, req)
			cancel()
		}
	}
	b, err := wire.EncodeResponse(&resp)
	if err != nil {
		logErr(err)
		b, _ = wire.Encode(wire.Fail(&wire.Request{RequestID: resp.RequestID, Action: resp.Action}, wire.NewError(wire.Internal)))
	}
	return b
}

// CheckVersion applies §2.2: a request may name a higher version than the
// connection's (have), never a lower one, and only one chatgate serves.
func CheckVersion(have, v string, versions []string) *wire.Error {
	if v == "" {
		return nil
	}
	want, ok := Minor(v)
	cur, _ := Minor(have)
	top, _ := Minor(versions[len(versions)-1])
	if !ok || want < cur || want > top {
		return wire.NewError(wire.UnsupportedVersion)
	}
	return nil
}

// Minor parses "3.N" (optionally "v3.N") into N.
func Minor(v string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(v, "v"), "3.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}
