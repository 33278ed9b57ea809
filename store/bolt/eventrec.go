package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/oklog/ulid/v2"

	"chatgate/core/model"
	"chatgate/internal/jsondec"
)

// Event records (the events bucket, under conversation ‖ 0 ‖ seq) come in
// two formats, told apart by their first byte:
//
//   - '{': the JSON of model.Event without the conv and seq its key holds
//     (layouts 1 and 2; see eventJSON). Still written for an event the
//     binary form cannot hold exactly.
//   - recBinary: since layout 3, a compact binary record (see
//     appendEventBinary). The JSON of a short message was about five times
//     its text: member names, quoted ULIDs, an RFC 3339 time. Most of what
//     a commit writes is event records, and bigger records mean more
//     B-tree pages written and fsync'd per commit (more leaves, and more
//     branch pages above them) and more bytes to encode and decode on
//     every read of the history.
//
// A binary record decodes to exactly the Event its JSON would decode to:
// appendEventBinary refuses (and the JSON is stored) whatever it cannot
// carry that way (a string that is not valid UTF-8, which JSON would have
// replaced; a time not in UTC or outside the years JSON writes). Fields that
// messages rarely have (vars, file, form, custom, props, edited_at,
// edited_by) travel as a JSON tail, decoded as before. FuzzEventRecord holds
// the two formats to the same result.
const recBinary = 0x01

// Atoms: the values of Kind, Author.Kind and Visibility the core writes
// are one byte (their index); anything else is written out (see
// appendAtom). The tables may grow at their end only: records hold indexes.
var (
	eventKinds  = []string{"", string(model.KindMessage), string(model.KindSystem), string(model.KindFile), string(model.KindForm), string(model.KindAnnotation), string(model.KindCustom), string(model.KindRich)}
	authorKinds = []string{"", string(model.AuthorVisitor), string(model.AuthorAgent), string(model.AuthorSystem)}
	visibility  = []string{"", string(model.VisibleAll), string(model.VisibleAgents)}
)

// Flags of a binary record.
const (
	flagDeleted = 1 << iota
	flagTail
)

// eventTail is what a binary record carries as JSON: the fields of
// model.Event that are not in the binary part, with the same names and
// omission rules.
type eventTail struct {
	Vars     map[string]string                     `json:"vars,omitempty"`
	File     *model.File                           `json:"file,omitempty"`
	Form     *model.Form                           `json:"form,omitempty"`
	Custom   json.RawMessage                       `json:"custom,omitempty"`
	Props    map[string]map[string]json.RawMessage `json:"props,omitempty"`
	EditedAt time.Time                             `json:"edited_at,omitzero"`
	EditedBy *model.Author                         `json:"edited_by,omitempty"`
}

// errNotBinary: the event needs the JSON format (see recBinary).
var errNotBinary = errors.New("event not representable in the binary record")

// eventVal encodes an event record: binary when it can be, else JSON.
func eventVal(e *model.Event) ([]byte, error) {
	if v, err := appendEventBinary(make([]byte, 0, 96+len(e.Text)), e); err == nil {
		return v, nil
	}
	return eventJSON(e)
}

// appendEventBinary appends e's binary record to buf: recBinary, flags
// (uvarint), ID, Kind, Author (kind, id, name), At (seconds as a zigzag
// varint, then nanoseconds), Visibility, ClientKey, Text, Subtype, and the
// JSON tail (to the end of the record) when flagTail is set. Strings are
// uvarint length ‖ bytes; ids are the same with 0 standing for a
// canonical ULID in its 16 bytes (see appendID); atoms see appendAtom.
func appendEventBinary(buf []byte, e *model.Event) ([]byte, error) {
	for _, s := range [...]string{e.ID, string(e.Kind), string(e.Author.Kind), e.Author.ID, e.Author.Name, string(e.Visibility), e.ClientKey, e.Text, e.Subtype} {
		if !utf8.ValidString(s) {
			return nil, errNotBinary
		}
	}
	if !jsonTime(e.At) {
		return nil, errNotBinary
	}
	var flags uint64
	if e.Deleted {
		flags |= flagDeleted
	}
	hasTail := len(e.Vars) > 0 || e.File != nil || e.Form != nil || len(e.Custom) > 0 || len(e.Props) > 0 || !e.EditedAt.IsZero() || e.EditedBy != nil
	if hasTail {
		flags |= flagTail
	}
	buf = append(buf, recBinary)
	buf = binary.AppendUvarint(buf, flags)
	buf = appendID(buf, e.ID)
	buf = appendAtom(buf, eventKinds, string(e.Kind))
	buf = appendAtom(buf, authorKinds, string(e.Author.Kind))
	buf = appendID(buf, e.Author.ID)
	buf = appendString(buf, e.Author.Name)
	buf = binary.AppendVarint(buf, e.At.Unix())
	buf = binary.AppendUvarint(buf, uint64(e.At.Nanosecond()))
	buf = appendAtom(buf, visibility, string(e.Visibility))
	buf = appendString(buf, e.ClientKey)
	buf = appendString(buf, e.Text)
	buf = appendString(buf, e.Subtype)
	if hasTail {
		// Made here only: json.Marshal takes its address, which puts it
		// on the heap wherever it is declared.
		tail := eventTail{Vars: e.Vars, File: e.File, Form: e.Form, Custom: e.Custom, Props: e.Props, EditedAt: e.EditedAt, EditedBy: e.EditedBy}
		t, err := json.Marshal(&tail)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		buf = append(buf, t...)
	}
	return buf, nil
}

// jsonTime reports whether t survives a JSON round trip as seconds and
// nanoseconds in UTC: JSON keeps another zone's offset (and decodes it as
// a zone of its own) and refuses years outside 0–9999.
func jsonTime(t time.Time) bool {
	return t.Location() == time.UTC && t.Year() >= 0 && t.Year() <= 9999
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendID appends an id: a canonical ULID (what model.NewID makes) as 0
// and its 16 bytes, anything else as its length + 1 and its bytes.
func appendID(buf []byte, s string) []byte {
	if len(s) == ulid.EncodedSize {
		if id, err := ulid.ParseStrict(s); err == nil && id.String() == s {
			buf = append(buf, 0)
			return append(buf, id[:]...)
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(s))+1)
	return append(buf, s...)
}

// appendAtom appends s as its index in table, or as len(table) + its
// length and its bytes when it is not there.
func appendAtom(buf []byte, table []string, s string) []byte {
	for i, a := range table {
		if a == s {
			return binary.AppendUvarint(buf, uint64(i))
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(table)+len(s)))
	return append(buf, s...)
}

// recReader reads a binary record; the first error sticks.
type recReader struct {
	b   []byte
	err error
}

var errShortRecord = errors.New("truncated binary event record")

func (r *recReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *recReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Varint(r.b)
	if k <= 0 {
		r.err = errShortRecord
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *recReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShortRecord
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *recReader) string() string { return string(r.bytes(r.uvarint())) }

func (r *recReader) id() string {
	n := r.uvarint()
	if n == 0 {
		var id ulid.ULID
		copy(id[:], r.bytes(16))
		if r.err != nil {
			return ""
		}
		return id.String()
	}
	return string(r.bytes(n - 1))
}

func (r *recReader) atom(table []string) string {
	n := r.uvarint()
	if n < uint64(len(table)) {
		return table[n]
	}
	return string(r.bytes(n - uint64(len(table))))
}

// decodeEventBinary decodes a binary record (v[0] is recBinary) into e,
// whose Conv and Seq the caller sets from the key.
func decodeEventBinary(v []byte, e *model.Event) error {
	r := recReader{b: v[1:]}
	flags := r.uvarint()
	*e = model.Event{}
	e.ID = r.id()
	e.Kind = model.EventKind(r.atom(eventKinds))
	e.Author.Kind = model.AuthorKind(r.atom(authorKinds))
	e.Author.ID = r.id()
	e.Author.Name = r.string()
	sec := r.varint()
	nsec := r.uvarint()
	e.Visibility = model.Visibility(r.atom(visibility))
	e.ClientKey = r.string()
	e.Text = r.string()
	e.Subtype = r.string()
	if r.err != nil {
		return fmt.Errorf("decode event: %w", r.err)
	}
	if nsec >= 1e9 {
		return fmt.Errorf("decode event: nanoseconds %d out of range", nsec)
	}
	e.At = time.Unix(sec, int64(nsec)).UTC()
	e.Deleted = flags&flagDeleted != 0
	switch {
	case flags&flagTail != 0:
		if len(r.b) == 0 || r.b[len(r.b)-1] != '}' {
			// goccy/go-json would let a stray byte after the object pass.
			return errors.New("decode event: tail is not a JSON object")
		}
		var t eventTail
		if err := gojson.Unmarshal(r.b, &t); err != nil {
			return fmt.Errorf("decode event tail: %w", err)
		}
		e.Vars, e.File, e.Form, e.Custom, e.Props, e.EditedAt, e.EditedBy = t.Vars, t.File, t.Form, t.Custom, t.Props, t.EditedAt, t.EditedBy
	case len(r.b) > 0:
		return fmt.Errorf("decode event: %d bytes after the record", len(r.b))
	}
	if flags&^(flagDeleted|flagTail) != 0 {
		return fmt.Errorf("decode event: unknown flags %#x", flags)
	}
	return nil
}

// eventJSON encodes an event record as JSON without the leading conv and
// seq members, which the key holds (a third of a short message's record;
// layout 2). encoding/json writes struct fields in order, so the JSON of a
// model.Event starts with exactly {"conv":<conv>,"seq":<seq>, ; should
// that ever not hold, the full JSON is stored, which reads back the same.
func eventJSON(e *model.Event) ([]byte, error) {
	val, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	conv, err := json.Marshal(e.Conv)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	prefix := append(append(append([]byte(`{"conv":`), conv...), `,"seq":`...), strconv.FormatUint(e.Seq, 10)...)
	if rest, ok := bytes.CutPrefix(val, prefix); ok && len(rest) > 1 && rest[0] == ',' {
		val = append(val[:1], rest[1:]...)
	}
	return val, nil
}

// decodeEvent decodes an event record stored under key k, in either
// format: conv and seq come from the key when the record leaves them out
// (always, in a binary record).
//
// JSON records are decoded by goccy/go-json, which reads encoding/json's
// output the same way twice as fast (events are most of what is read:
// history pages, exports).
func decodeEvent(k, v []byte, e *model.Event) error {
	if len(v) > 0 && v[0] == recBinary {
		if err := decodeEventBinary(v, e); err != nil {
			return err
		}
	} else if err := unmarshalJSONRecord(v, e); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	if e.Conv == "" && len(k) > 9 {
		e.Conv = model.ConvID(k[:len(k)-9])
		e.Seq = binary.BigEndian.Uint64(k[len(k)-8:])
	}
	return nil
}

// unmarshalJSONRecord decodes a JSON event record with goccy, or with
// encoding/json when it may hold a high surrogate escape, which goccy
// must not decode (jsondec.HighSurrogateEscape). chatgate's encoders
// write characters outside the BMP as UTF-8, so its own records hold none;
// an imported or hand-edited one might.
func unmarshalJSONRecord(v []byte, e *model.Event) error {
	if jsondec.HighSurrogateEscape(v) {
		return json.Unmarshal(v, e)
	}
	return gojson.Unmarshal(v, e)
}

// sameEvent reports whether the stored record old holds the event that
// val encodes, whatever the format old was written in (an import restores
// events as this build encodes them).
func sameEvent(k, old, val []byte) bool {
	if bytes.Equal(old, val) {
		return true
	}
	if len(old) == 0 || old[0] == recBinary {
		return false
	}
	var e model.Event
	if decodeEvent(k, old, &e) != nil {
		return false
	}
	again, err := eventVal(&e)
	return err == nil && bytes.Equal(again, val)
}
