package rocketchat

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadLimitedAsReadAll: readLimited returns what
// io.ReadAll(io.LimitReader(r, max+1)) returns, bytes and error, whatever
// length the body declares (exact, shorter, longer, unknown, over the
// limit) and however its reader delivers (one byte at a time, data with
// EOF, an error part way).
func TestReadLimitedAsReadAll(t *testing.T) {
	const max = 16
	boom := errors.New("boom")
	readers := map[string]func(string) io.Reader{
		"plain":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"data+EOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"half+fail": func(s string) io.Reader {
			return io.MultiReader(strings.NewReader(s[:len(s)/2]), iotest.ErrReader(boom))
		},
	}
	for _, body := range []string{"", "a", `{"msg":"hi"}`, strings.Repeat("x", max), strings.Repeat("y", max+1), strings.Repeat("z", 3*max)} {
		for _, declared := range []int64{-1, 0, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 1, max, max + 1} {
			for name, mk := range readers {
				want, wantErr := io.ReadAll(io.LimitReader(mk(body), max+1))
				got, err := readLimited(mk(body), declared, max)
				if !bytes.Equal(got, want) || !errors.Is(err, wantErr) && err != wantErr {
					t.Errorf("%s body %q declared %d: got %q, %v; want %q, %v", name, body, declared, got, err, want, wantErr)
				}
			}
		}
	}
}
