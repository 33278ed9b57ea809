package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"chatgate/configs"
	"chatgate/store"
	"chatgate/store/bolt"
	"chatgate/store/files"
	"chatgate/store/postgres"
)

// openedStore is the store a node runs on, with its uploaded files.
type openedStore struct {
	store.Store
	// Kind is "bolt" or "postgres", for /readyz and logs.
	Kind  string
	Files *files.Store
	// Where names the data file or the database (without credentials).
	Where string
}

// openStore opens what cfg.Store selects: PostgreSQL when url is set, else
// the bbolt file at path. onCommit, if set, is told of every commit (bolt:
// per group transaction; postgres: per commit).
func openStore(ctx context.Context, cfg *configs.Config, onCommit func(bolt.Stats)) (*openedStore, error) {
	if u := cfg.Store.URL; u != "" {
		pg, err := postgres.Open(ctx, u, postgres.Options{OnCommit: func(s postgres.Stats) {
			if onCommit != nil {
				onCommit(bolt.Stats{Requests: s.Requests, Keys: s.Statements, Duration: s.Duration, Err: s.Err})
			}
		}})
		if err != nil {
			return nil, err
		}
		return &openedStore{Store: pg, Kind: "postgres", Files: files.OpenBlobs(pg, cfg.Store.MaxUploadBytes), Where: redactURL(u)}, nil
	}
	st, err := bolt.Open(cfg.Store.Path, bolt.Options{OnCommit: onCommit})
	if err != nil {
		return nil, err
	}
	// Uploaded files: on disk beside the data file.
	filesDir := cfg.Store.FilesDir
	if filesDir == "" {
		filesDir = cfg.Store.Path + ".files"
	}
	fs, err := files.Open(filesDir, cfg.Store.MaxUploadBytes)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &openedStore{Store: st, Kind: "bolt", Files: fs, Where: cfg.Store.Path}, nil
}

// redactURL drops the password from a database URL, for logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "postgres"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		rest = user + "@" + rest[at+1:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q]
	}
	return scheme + "://" + rest
}

// defaultNodeID names a node that was given no --node-id: its host name
// and a random suffix, so that two processes on one host differ.
func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return host
	}
	return fmt.Sprintf("%s-%s", host, hex.EncodeToString(b[:]))
}
