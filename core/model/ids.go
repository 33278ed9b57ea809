package model

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/oklog/ulid/v2"
)

// NewID returns a new time-ordered, globally unique id (a ULID, 26
// characters of Crockford base32). Time order makes store keys of one
// visitor's conversations sort by age.
func NewID() string { return ulid.Make().String() }

// Secret returns n random bytes from crypto/rand, hex-encoded: for session
// ids and tokens that must be unguessable.
func Secret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
