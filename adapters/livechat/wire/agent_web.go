package wire

import "net/http"

// ErrorOf returns the error of a failed response (nil for a success): the
// Web API sends it as the body, with an HTTP status chosen by its type.
func ErrorOf(r Response) *Error {
	if r.Success {
		return nil
	}
	if p, ok := r.Payload.(errorPayload); ok && p.Error != nil {
		return p.Error
	}
	return NewError(Internal)
}

// HTTPStatus is the status every Web API (agent, customer, configuration)
// sends with an error of type t. LiveChat documents only the bodies; this
// is §2.9's suggested mapping, and clients read only the body.
func HTTPStatus(t ErrorType) int {
	switch t {
	case Validation, UnsupportedVersion, LimitReached:
		return http.StatusBadRequest
	case Authentication:
		return http.StatusUnauthorized
	case Authorization:
		return http.StatusForbidden
	case NotFound, LicenseNotFound, GroupNotFound, GreetingNotFound:
		return http.StatusNotFound
	case ChatInactive, AgentOffline, CustomerBanned, AlreadyExists, GroupOffline:
		return http.StatusUnprocessableEntity
	case EntityTooLarge:
		return http.StatusRequestEntityTooLarge
	case TooManyRequests:
		return http.StatusTooManyRequests
	case ServiceUnavailable:
		return http.StatusServiceUnavailable
	case RequestTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
