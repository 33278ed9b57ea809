package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// std is what encoding/json writes for s, with or without HTML escaping.
func std(t testing.TB, s string, html bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	cases := []struct{ name, s string }{
		{"empty", ""},
		{"plain", "hello, world"},
		{"quotes and backslash", `say "hi" \ bye`},
		{"short escapes", "a\b\f\n\r\tz"},
		{"other controls", "\x00\x01\x1f\x7f"},
		{"html", "<a href='x'>&amp;</a>"},
		{"invalid utf-8", "ok\xffok\xc3"},
		{"line separators", "a\u2028b\u2029c"},
		{"multibyte", "żółć 日本 😀"},
	}
	for _, c := range cases {
		for _, html := range []bool{false, true} {
			if got, want := string(Append([]byte("x"), c.s, html)), "x"+std(t, c.s, html); got != want {
				t.Errorf("%s (html %v): got %s, want %s", c.name, html, got, want)
			}
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "a\"b", "<&>", "\x00\u2028\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, html := range []bool{false, true} {
			if got, want := string(Append(nil, s, html)), std(t, s, html); got != want {
				t.Fatalf("%q (html %v): got %s, want %s", s, html, got, want)
			}
		}
	})
}
