package visitorv2

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeBody(t *testing.T) {
	cases := []struct {
		name, ctype, body string
		want              map[string]string
		wantErr           bool
	}{
		{"form", "application/x-www-form-urlencoded", "a=1&b=x%20y", map[string]string{"a": "1", "b": "x y"}, false},
		{"form no type", "", "a=1", map[string]string{"a": "1"}, false},
		{"json", "application/json", `{"a":1,"b":"x","c":true,"d":null}`, map[string]string{"a": "1", "b": "x", "c": "true"}, false},
		{"json charset", "application/json; charset=utf-8", `{"a":"x"}`, map[string]string{"a": "x"}, false},
		{"json sniffed", "", `{"a":"x"}`, map[string]string{"a": "x"}, false},
		{"big number kept as text", "application/json", `{"licence_id":12345678901234567890}`, map[string]string{"licence_id": "12345678901234567890"}, false},
		{"empty", "application/json", "", map[string]string{}, false},
		{"json trailing", "application/json", `{"a":1} {"b":2}`, nil, true},
		{"json array value", "application/json", `{"a":[1]}`, nil, true},
		{"json not object", "application/json", `"x"`, nil, true},
		{"bad form escape", "application/x-www-form-urlencoded", "a=%G1", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeBody(tc.ctype, []byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			for k, v := range tc.want {
				if got.Get(k) != v {
					t.Fatalf("%s = %q, want %q (all: %v)", k, got.Get(k), v, got)
				}
			}
			if !tc.wantErr && len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParamsBodyLimit(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/x?q=1", bytes.NewReader(bytes.Repeat([]byte("a"), 11)))
	if _, _, err := params(r, 10, nil); err != errTooLarge {
		t.Fatalf("err = %v, want errTooLarge", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/x?a=q", bytes.NewReader([]byte("a=b")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	q, b, err := params(r, 10, nil)
	req := request{query: q, body: b}
	if err != nil || req.get("a") != "b" {
		t.Fatalf("body should win over query: %v %v %v", q, b, err)
	}
	// A key the body sends empty still wins.
	r = httptest.NewRequest(http.MethodPost, "/x?a=q&c=3", bytes.NewReader([]byte("a=")))
	q, b, err = params(r, 10, nil)
	req = request{query: q, body: b}
	if err != nil || req.get("a") != "" || req.get("c") != "3" {
		t.Fatalf("empty body value: %v %v %v", q, b, err)
	}
}

func TestParseFormLikeParseQuery(t *testing.T) {
	for _, s := range []string{
		"", "a=1&b=x%20y+z", "a=1&a=2", "&&a&=b&c=", "a=%G1&b=2", "a;b=1&c=%zz", "a=%zz&b;=1", "k%3D=v%26",
		"licence_id=1&secured_session_id=abc&last_message_id=9", strings.Repeat("a&", 10000),
	} {
		checkParseForm(t, s)
	}
}

// checkParseForm holds parseForm to url.ParseQuery: the same pairs (in
// order per key) and the same error.
func checkParseForm(t *testing.T, s string) {
	t.Helper()
	want, werr := url.ParseQuery(s)
	got, gerr := parseForm(nil, s)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%q: error %v, url.ParseQuery %v", s, gerr, werr)
	}
	g := url.Values{}
	for _, p := range got {
		g[p.k] = append(g[p.k], p.v)
	}
	if len(want) == 0 && len(g) == 0 {
		return
	}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("%q: got %v, url.ParseQuery %v", s, g, want)
	}
}

// FuzzParseForm: parseForm decodes any string as url.ParseQuery does.
func FuzzParseForm(f *testing.F) {
	f.Add("licence_id=1&message=hi%20there+x")
	f.Add("a;b=%zz&&=&c")
	f.Fuzz(checkParseForm)
}

// FuzzDecodeBody: any bytes under any content type either decode or give
// an error; never a panic.
func FuzzDecodeBody(f *testing.F) {
	f.Add("application/json", []byte(`{"licence_id":1,"message":"hi"}`))
	f.Add("application/x-www-form-urlencoded", []byte("licence_id=1&message=hi%20there"))
	f.Add("", []byte(`{"a":[{"b":null}]}`))
	f.Add("text/plain; charset=\"", []byte("%%%"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		v, err := decodeBody(ctype, body)
		if err == nil && v == nil {
			t.Fatal("nil values without error")
		}
	})
}
