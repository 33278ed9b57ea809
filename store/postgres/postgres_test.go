package postgres

import (
	"testing"

	"chatgate/store"
	"chatgate/store/postgres/pgtest"
	"chatgate/store/storetest"
)

// open opens a store in a fresh schema of the test server.
func open(t *testing.T, opts Options) *Store {
	t.Helper()
	url := pgtest.URL(t)
	if opts.Schema == "" {
		opts.Schema = pgtest.Schema(t, url)
	}
	s, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, Options{}) })
}
