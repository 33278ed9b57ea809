package wire

import (
	"context"
	"errors"
	"fmt"

	"chatgate/core/desk"
	"chatgate/store"
)

// ErrorType is a LiveChat v3 error type (§2.9). Clients dispatch on it (the
// customer SDK upper-cases it into an error code), never on the message.
type ErrorType string

// Error types chatgate uses. The table in §2.9 has more; add them here when
// a surface needs them.
const (
	Authentication     ErrorType = "authentication"
	Authorization      ErrorType = "authorization"
	Validation         ErrorType = "validation"
	NotFound           ErrorType = "not_found"
	ChatInactive       ErrorType = "chat_inactive"
	EntityTooLarge     ErrorType = "entity_too_large"
	LicenseNotFound    ErrorType = "license_not_found"
	RequestTimeout     ErrorType = "request_timeout"
	TooManyRequests    ErrorType = "too_many_requests"
	ServiceUnavailable ErrorType = "service_unavailable"
	Internal           ErrorType = "internal"
	UnsupportedVersion ErrorType = "unsupported_version"
	AgentOffline       ErrorType = "agent_offline"
	CustomerBanned     ErrorType = "customer_banned"
	LimitReached       ErrorType = "limit_reached"
	AlreadyExists      ErrorType = "already_exists"
	GroupNotFound      ErrorType = "group_not_found"
	GroupOffline       ErrorType = "group_offline"
	GreetingNotFound   ErrorType = "greeting_not_found"
)

var defaultMessages = map[ErrorType]string{
	Authentication:     "Authentication error",
	Authorization:      "Authorization error",
	Validation:         "Wrong format of request",
	NotFound:           "Not found",
	ChatInactive:       "Chat is inactive",
	EntityTooLarge:     "Request entity too large",
	LicenseNotFound:    "License not found",
	RequestTimeout:     "Request timed out",
	TooManyRequests:    "Too many requests",
	ServiceUnavailable: "Service unavailable",
	Internal:           "Internal server error",
	UnsupportedVersion: "Cannot call unsupported API versions.",
	AgentOffline:       "Agent is offline",
	CustomerBanned:     "Customer is banned",
	LimitReached:       "Limit reached",
	AlreadyExists:      "Already exists",
	GroupNotFound:      "Group not found",
	GroupOffline:       "Group offline",
	GreetingNotFound:   "Greeting not found",
}

// Error is the body of every v3 error: {"type","message","data"?}. It is
// also a Go error, so handlers simply return it.
type Error struct {
	Type    ErrorType `json:"type"`
	Message string    `json:"message"`
	Data    any       `json:"data,omitempty"`
}

func (e *Error) Error() string { return string(e.Type) + ": " + e.Message }

// NewError returns an error of type t with its default message.
func NewError(t ErrorType) *Error {
	msg, ok := defaultMessages[t]
	if !ok {
		msg = string(t)
	}
	return &Error{Type: t, Message: msg}
}

// Errorf returns an error of type t with a formatted message. The message
// reaches the client: never put stored data or internal errors in it.
func Errorf(t ErrorType, format string, args ...any) *Error {
	return &Error{Type: t, Message: fmt.Sprintf(format, args...)}
}

// FromError maps any handler error to a v3 error. *Error passes through;
// core errors map as follows (documented choices where §2.9 leaves room):
//
//	desk.ErrNotFound, store.ErrNotFound → not_found
//	desk.ErrInactive                    → chat_inactive
//	desk.ErrInvalid                     → validation (with the desk's reason)
//	desk.ErrTooLarge                    → validation: a field over its limit is
//	                                      a malformed request in LiveChat's terms
//	                                      (§2.4 "message.text ≤ 16 KB");
//	                                      entity_too_large is kept for whole
//	                                      requests/frames and uploads
//	desk.ErrForbidden                   → authorization
//	desk.ErrVisitorBusy                 → validation ("Chat is already active")
//	desk.ErrAgentUnavailable            → agent_offline
//	desk.ErrBanned                      → customer_banned
//	desk.ErrRateLimited                 → too_many_requests (429)
//	context.DeadlineExceeded            → request_timeout
//	context.Canceled, store.ErrClosed   → service_unavailable
//	anything else                       → internal (details only in logs)
//
// The second result reports whether the error is unexpected and should be
// logged by the caller.
func FromError(err error) (*Error, bool) {
	var we *Error
	switch {
	case err == nil:
		return nil, false
	case errors.As(err, &we):
		return we, false
	case errors.Is(err, desk.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return NewError(NotFound), false
	case errors.Is(err, desk.ErrInactive):
		return NewError(ChatInactive), false
	case errors.Is(err, desk.ErrTooLarge):
		return Errorf(Validation, "Wrong format of request: %s", err.Error()), false
	case errors.Is(err, desk.ErrInvalid):
		return Errorf(Validation, "Wrong format of request: %s", err.Error()), false
	case errors.Is(err, desk.ErrForbidden):
		return NewError(Authorization), false
	case errors.Is(err, desk.ErrVisitorBusy):
		return Errorf(Validation, "Chat is already active"), false
	case errors.Is(err, desk.ErrBanned):
		return NewError(CustomerBanned), false
	case errors.Is(err, desk.ErrRateLimited):
		return Errorf(TooManyRequests, "Too many requests: slow down and try again later"), false
	case errors.Is(err, desk.ErrAgentUnavailable):
		return NewError(AgentOffline), false
	case errors.Is(err, context.DeadlineExceeded):
		return NewError(RequestTimeout), true
	case errors.Is(err, context.Canceled), errors.Is(err, store.ErrClosed):
		return NewError(ServiceUnavailable), false
	default:
		return NewError(Internal), true
	}
}
