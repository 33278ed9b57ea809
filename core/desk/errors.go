package desk

import "errors"

// Errors the desk returns; surfaces translate them into their protocol's
// error format with errors.Is.
var (
	// ErrNotFound: no such conversation, visitor or agent.
	ErrNotFound = errors.New("not found")
	// ErrInactive: the conversation is closed.
	ErrInactive = errors.New("conversation is closed")
	// ErrInvalid: the command is malformed (empty text, unknown kind ...).
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: a text or field is over the configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrForbidden: the author may not act on this conversation.
	ErrForbidden = errors.New("not allowed")
	// ErrVisitorBusy: the visitor already has an open conversation.
	ErrVisitorBusy = errors.New("visitor already has an open conversation")
	// ErrBanned: the visitor is banned.
	ErrBanned = errors.New("visitor is banned")
	// ErrRateLimited: a rate limit (Limits.Starts, Limits.Messages, or a
	// surface's own) refused the command; try again later.
	ErrRateLimited = errors.New("rate limited")
	// ErrAgentUnavailable: the target agent cannot take the conversation.
	ErrAgentUnavailable = errors.New("agent unavailable")
)
