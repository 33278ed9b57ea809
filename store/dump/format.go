// Package migrate moves chatgate's whole model in and out of a store as
// NDJSON (the export format, see docs/migration.md): Export streams a
// consistent snapshot, Import restores one in large idempotent batches.
// Both run in constant memory whatever the size of the store.
package dump

import (
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/files"
)

// Format and Version name the export format. A reader refuses a newer
// version; a new version is only needed when a record changes meaning (new
// fields may be added to a version: readers ignore fields they do not know).
const (
	Format  = "chatgate-export"
	Version = 1
)

// Record types besides the store's (store.Rec*).
const (
	RecHeader = "header"
	RecFile   = "file"
	RecBlob   = "blob"
	RecEnd    = "end"
)

// Header is the first line of an export.
type Header struct {
	Type      string    `json:"type"`
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Source    Source    `json:"source"`
	Filters   *Filters  `json:"filters,omitempty"`
	// Files says where file bodies are: "inline" (blob records after
	// each file record) or "dir" (one file per content hash in a
	// directory given to import with --files-dir).
	Files string `json:"files"`
}

// Source describes what was exported.
type Source struct {
	// Kind is "chatgate" for an export of a chatgate store.
	Kind string `json:"kind"`
	// Store is the backend ("bolt", "postgres").
	Store string `json:"store,omitempty"`
	// Schema is the store's schema version.
	Schema int `json:"schema,omitempty"`
}

// Filters select part of a store; the zero value selects everything.
type Filters struct {
	// Since and Until bound the conversations' creation time: Since <=
	// created_at < Until. Zero means unbounded.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Department keeps the conversations of one department.
	Department model.DeptID `json:"department,omitempty"`
	// Conversations keeps only these conversations.
	Conversations []model.ConvID `json:"conversations,omitempty"`
}

// Empty reports whether f selects everything.
func (f *Filters) Empty() bool {
	return f == nil || (f.Since.IsZero() && f.Until.IsZero() && f.Department == "" && len(f.Conversations) == 0)
}

// Match reports whether conversation c is selected.
func (f *Filters) Match(c *model.Conversation) bool {
	if f.Empty() {
		return true
	}
	if !f.Since.IsZero() && c.CreatedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !c.CreatedAt.Before(f.Until) {
		return false
	}
	if f.Department != "" && c.Department != f.Department {
		return false
	}
	if len(f.Conversations) > 0 {
		for _, id := range f.Conversations {
			if id == c.ID {
				return true
			}
		}
		return false
	}
	return true
}

// FileRecord describes one stored file; its body is found by SHA256.
type FileRecord struct {
	files.File
	SHA256 string `json:"sha256"`
}

// MappingRecord is a mapping; Latest marks the reverse binding of its core
// id.
type MappingRecord struct {
	System  string `json:"system"`
	Tenant  string `json:"tenant,omitempty"`
	Kind    string `json:"kind"`
	Foreign string `json:"foreign"`
	Core    string `json:"core"`
	Latest  bool   `json:"latest,omitempty"`
}

// IdemRecord is an idempotency key.
type IdemRecord struct {
	System string       `json:"system"`
	Key    string       `json:"key"`
	Conv   model.ConvID `json:"conv"`
	Seq    uint64       `json:"seq"`
}

// Line is one NDJSON line: Type and the field named after it.
type Line struct {
	Type         string              `json:"type"`
	Visitor      *model.Visitor      `json:"visitor,omitempty"`
	Conversation *model.Conversation `json:"conversation,omitempty"`
	Event        *model.Event        `json:"event,omitempty"`
	Mapping      *MappingRecord      `json:"mapping,omitempty"`
	Idem         *IdemRecord         `json:"idem,omitempty"`
	Outbox       *store.OutboxRow    `json:"outbox,omitempty"`
	File         *FileRecord         `json:"file,omitempty"`
	// Meta lines: Key and Value (bytes, base64 in JSON).
	Key   string `json:"key,omitempty"`
	Value []byte `json:"value,omitempty"`
	// Blob lines: a chunk of the body of SHA256; EOF on the last one.
	SHA256 string `json:"sha256,omitempty"`
	Data   []byte `json:"data,omitempty"`
	EOF    bool   `json:"eof,omitempty"`
	// End line: records written per type (blobs not counted).
	Counts map[string]int `json:"counts,omitempty"`
}
