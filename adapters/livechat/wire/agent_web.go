package wire

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
