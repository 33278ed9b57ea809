package visitorv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// errTooLarge marks a body over the size limit (413).
var errTooLarge = errors.New("request body too large")

// params reads a v2 request's parameters: the query string, then the body
// as application/x-www-form-urlencoded (documented) or application/json
// (what several third-party clients send), body values winning. JSON values
// must be scalars; numbers keep their text.
func params(r *http.Request, maxBody int64) (url.Values, error) {
	vals := url.Values{}
	for k, v := range r.URL.Query() {
		vals[k] = v
	}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return vals, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, errTooLarge
	}
	body2, err := decodeBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	for k, v := range body2 {
		vals[k] = v
	}
	return vals, nil
}

// decodeBody parses a body by content type. An empty or unknown content
// type is read as a form when it parses as one, since curl -d sends forms.
func decodeBody(contentType string, body []byte) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return url.Values{}, nil
	}
	if mt == "application/json" || (mt == "" && strings.HasPrefix(trimmed, "{")) {
		return decodeJSON(body)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("malformed form body: %w", err)
	}
	return v, nil
}

func decodeJSON(body []byte) (url.Values, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("malformed JSON body: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed JSON body: trailing data")
	}
	out := url.Values{}
	for k, raw := range m {
		var v any
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("malformed JSON value of %q: %w", k, err)
		}
		switch x := v.(type) {
		case nil:
		case string:
			out.Set(k, x)
		case json.Number:
			out.Set(k, x.String())
		case bool:
			out.Set(k, strconv.FormatBool(x))
		default:
			return nil, fmt.Errorf("parameter %q must be a string or a number", k)
		}
	}
	return out, nil
}
