package wire

import "testing"

// TestHTTPStatus pins the one error-to-status table the agent, customer
// and configuration Web APIs share.
func TestHTTPStatus(t *testing.T) {
	cases := []struct {
		t    ErrorType
		want int
	}{
		{Validation, 400}, {UnsupportedVersion, 400}, {LimitReached, 400},
		{Authentication, 401}, {Authorization, 403},
		{NotFound, 404}, {LicenseNotFound, 404}, {GroupNotFound, 404}, {GroupOffline, 422},
		{ChatInactive, 422}, {AgentOffline, 422}, {CustomerBanned, 422}, {AlreadyExists, 422},
		{EntityTooLarge, 413}, {TooManyRequests, 429}, {ServiceUnavailable, 503},
		{RequestTimeout, 504}, {Internal, 500}, {"something_new", 500},
	}
	for _, tc := range cases {
		if got := HTTPStatus(tc.t); got != tc.want {
			t.Errorf("HTTPStatus(%s) = %d, want %d", tc.t, got, tc.want)
		}
	}
}
