// Package ddp is Meteor's Distributed Data Protocol as Rocket.Chat speaks
// it: the frame shapes (ddp.md, version "1") and EJSON, the JSON dialect DDP
// carries in `params`, `result` and `fields`.
//
// EJSON (Meteor packages/ejson/ejson.js) extends JSON with a few object
// forms recognised only when an object has one or two keys, all starting
// with "$":
//
//	{"$date": <ms since epoch>}          Date        <-> time.Time
//	{"$binary": "<base64>"}              Uint8Array  <-> []byte
//	{"$InfNaN": 1|-1|0}                  ±Infinity, NaN <-> float64
//	{"$regexp": "<src>", "$flags": "…"}  RegExp      <-> RegExp (newer Meteor)
//	{"$escape": {…}}                     an ordinary object whose keys would
//	                                     otherwise read as one of the above
//	{"$type": "<name>", "$value": …}     custom types: refused (ErrUnsupported)
//
// Decoding turns them into Go values; Marshal produces them from Go values
// and escapes ordinary maps that would be misread. Everything else is plain
// JSON: objects decode to map[string]any, arrays to []any, numbers to
// float64.
package ddp

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatgate/adapters/internal/jsonstr"
)

// Errors of the EJSON codec; test with errors.Is.
var (
	// ErrEJSON: a special form is malformed ({"$date":"soon"}, bad base64,
	// a date outside JavaScript's range, an $escape of a non-object).
	ErrEJSON = errors.New("ejson: malformed value")
	// ErrUnsupported: a custom type ({"$type","$value"}) this side does not
	// define, as Meteor refuses an undefined one.
	ErrUnsupported = errors.New("ejson: unsupported type")
	// ErrMarshal: a Go value with no EJSON form (channel, func, complex,
	// map with non-string keys, cyclic or too deep value).
	ErrMarshal = errors.New("ejson: cannot encode value")
)

// maxDateMs is JavaScript's Date range: ±8.64e15 ms around the epoch.
const maxDateMs = 8.64e15

// maxDepth bounds nesting on encoding (cycles) and decoding.
const maxDepth = 10000

// RegExp is an EJSON regular expression; it is carried, never executed.
type RegExp struct {
	Source string
	Flags  string
}

// KV is one key of an ordered object.
type KV struct {
	Key   string
	Value any
}

// Obj is an object whose keys are written in the given order (DDP frames
// read better with "msg" first). Like maps, it is escaped when its keys
// would read as an EJSON special form.
type Obj []KV

// --- decoding ------------------------------------------------------------------

// Unmarshal parses one JSON value and converts its EJSON forms.
func Unmarshal(data []byte) (any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return FromJSONValue(v)
}

// FromJSONValue converts the EJSON forms inside a plain JSON value (as
// encoding/json decodes into any) to Go values. The input may be modified.
func FromJSONValue(v any) (any, error) { return fromJSON(v, 0) }

func fromJSON(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested too deeply", ErrEJSON)
	}
	switch x := v.(type) {
	case map[string]any:
		if special, ok, err := fromSpecial(x, depth); ok || err != nil {
			return special, err
		}
		for k, e := range x {
			d, err := fromJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = d
		}
		return x, nil
	case []any:
		for i, e := range x {
			d, err := fromJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = d
		}
		return x, nil
	}
	return v, nil
}

// specialKeys reports whether an object's key set is one EJSON reads as a
// special form (Meteor: one or two keys, all starting with "$", matching a
// converter exactly).
func specialKeys(keys []string) bool {
	switch len(keys) {
	case 1:
		return specialKey(keys[0])
	case 2:
		return specialPair(keys[0], keys[1])
	}
	return false
}

// specialKey reports whether a one-key object reads as a special form.
func specialKey(k string) bool {
	switch k {
	case "$date", "$binary", "$InfNaN", "$escape":
		return true
	}
	return false
}

// specialPair reports whether a two-key object reads as a special form.
func specialPair(a, b string) bool {
	if a > b {
		a, b = b, a
	}
	return (a == "$type" && b == "$value") || (a == "$flags" && b == "$regexp")
}

func fromSpecial(m map[string]any, depth int) (any, bool, error) {
	if len(m) == 0 || len(m) > 2 {
		return nil, false, nil
	}
	keys := make([]string, 0, 2)
	for k := range m {
		keys = append(keys, k)
	}
	if !specialKeys(keys) {
		return nil, false, nil
	}
	if _, ok := m["$date"]; ok {
		t, err := decodeDate(m["$date"])
		return t, true, err
	}
	if raw, ok := m["$binary"]; ok {
		s, isStr := raw.(string)
		if !isStr {
			return nil, true, fmt.Errorf("%w: $binary is not a string", ErrEJSON)
		}
		b, err := decodeBase64(s)
		if err != nil {
			return nil, true, fmt.Errorf("%w: $binary: %v", ErrEJSON, err)
		}
		return b, true, nil
	}
	if raw, ok := m["$InfNaN"]; ok {
		f, isNum := raw.(float64)
		switch {
		case !isNum:
			return nil, true, fmt.Errorf("%w: $InfNaN is not a number", ErrEJSON)
		case f > 0:
			return math.Inf(1), true, nil
		case f < 0:
			return math.Inf(-1), true, nil
		}
		return math.NaN(), true, nil
	}
	if raw, ok := m["$escape"]; ok {
		inner, isObj := raw.(map[string]any)
		if !isObj {
			return nil, true, fmt.Errorf("%w: $escape of a non-object", ErrEJSON)
		}
		// One level: the inner keys are literal, the values are EJSON.
		for k, e := range inner {
			d, err := fromJSON(e, depth+1)
			if err != nil {
				return nil, true, err
			}
			inner[k] = d
		}
		return inner, true, nil
	}
	if src, ok := m["$regexp"]; ok {
		s, ok1 := src.(string)
		f, ok2 := m["$flags"].(string)
		if !ok1 || !ok2 {
			return nil, true, fmt.Errorf("%w: $regexp/$flags are not strings", ErrEJSON)
		}
		return RegExp{Source: s, Flags: f}, true, nil
	}
	name, _ := m["$type"].(string)
	return nil, true, fmt.Errorf("%w: custom EJSON type %.64q is not defined", ErrUnsupported, name)
}

// decodeDate reads a $date value: milliseconds since the epoch (as Meteor
// writes it) or, leniently, an ISO 8601 string (as some Mongo extended-JSON
// writers do). JavaScript truncates fractional milliseconds.
func decodeDate(raw any) (time.Time, error) {
	switch x := raw.(type) {
	case float64:
		if math.IsNaN(x) || math.Abs(x) > maxDateMs {
			return time.Time{}, fmt.Errorf("%w: $date %v out of range", ErrEJSON, x)
		}
		return time.UnixMilli(int64(x)).UTC(), nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: $date %.40q is not a date", ErrEJSON, x)
		}
		if ms := t.UnixMilli(); math.Abs(float64(ms)) > maxDateMs {
			return time.Time{}, fmt.Errorf("%w: $date %.40q out of range", ErrEJSON, x)
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	return time.Time{}, fmt.Errorf("%w: $date is neither a number nor a string", ErrEJSON)
}

func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// --- encoding ------------------------------------------------------------------

// Marshal encodes v as EJSON text:
//
//   - time.Time (and *time.Time) as {"$date": ms}; a date outside
//     JavaScript's range is an error;
//   - []byte as {"$binary": base64}; json.RawMessage is copied verbatim;
//   - NaN and ±Inf as {"$InfNaN": 0|1|-1}; RegExp as {"$regexp","$flags"};
//   - maps with string keys (sorted), Obj (in order), slices, arrays,
//     pointers and interfaces as JSON; an object whose keys would read as a
//     special form is wrapped in {"$escape": …};
//   - structs by their exported fields with encoding/json's tag rules
//     (name, "-", omitempty, omitzero; embedded structs flattened);
//   - other json.Marshaler values by MarshalJSON (not converted further),
//     encoding.TextMarshaler values as strings.
//
// Strings are written without HTML escaping, as JSON.stringify writes them.
func Marshal(v any) ([]byte, error) {
	e := encoder{}
	// A stream frame of one chat message is 400-600 bytes: one
	// allocation instead of the buffer's doublings from 64.
	e.buf.Grow(marshalStart)
	if err := e.value(v, 0); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// ToJSONValue returns v as a plain JSON value (map[string]any, []any,
// string, float64, bool, nil) with EJSON forms in place: what Meteor's
// EJSON.toJSONValue returns.
func ToJSONValue(v any) (any, error) {
	b, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMarshal, err)
	}
	return out, nil
}

type encoder struct {
	buf bytes.Buffer
}

// Appender is a value that writes its own EJSON text (a rendered message
// written field by field instead of as a map); Marshal and the frame
// writers append what AppendEJSON returns as it is. It must write what
// Marshal would write for the value it stands for.
type Appender interface {
	AppendEJSON(dst []byte) ([]byte, error)
}

// AppendValue appends v as Marshal encodes it, for an Appender's parts
// (a nested map or slice).
func AppendValue(dst []byte, v any) ([]byte, error) {
	e := encoder{buf: *bytes.NewBuffer(dst)}
	if err := e.value(v, 1); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// AppendDate appends t as Marshal encodes a time: {"$date":ms}, or an
// error outside JavaScript's Date range.
func AppendDate(dst []byte, t time.Time) ([]byte, error) {
	if err := checkDate(t); err != nil {
		return nil, err
	}
	dst = append(dst, `{"$date":`...)
	dst = strconv.AppendInt(dst, t.UnixMilli(), 10)
	return append(dst, '}'), nil
}

// AppendString appends s as Marshal encodes a string (no HTML escaping).
func AppendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, false) }

// marshalStart is the buffer Marshal starts with.
const marshalStart = 512

// stackMembers is how many members of an object are sorted and written
// from a fixed array on the stack; larger objects allocate.
const stackMembers = 16

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawType     = reflect.TypeFor[json.RawMessage]()
	marshalerT  = reflect.TypeFor[json.Marshaler]()
	appenderT   = reflect.TypeFor[Appender]()
	textMarshT  = reflect.TypeFor[encoding.TextMarshaler]()
	byteSliceT  = reflect.TypeFor[[]byte]()
	regexpType  = reflect.TypeFor[RegExp]()
	objType     = reflect.TypeFor[Obj]()
	errTooDeep  = fmt.Errorf("%w: nested too deeply (cycle?)", ErrMarshal)
	escapeBegin = []byte(`{"$escape":`)
)

func (e *encoder) value(v any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	// Fast paths for what renders produce.
	switch x := v.(type) {
	case nil:
		e.buf.WriteString("null")
		return nil
	case string:
		writeString(&e.buf, x)
		return nil
	case bool:
		e.buf.WriteString(strconv.FormatBool(x))
		return nil
	case float64:
		e.float(x, 64)
		return nil
	case int:
		e.int(int64(x))
		return nil
	case int64:
		e.int(x)
		return nil
	case time.Time:
		return e.date(x)
	case *time.Time:
		if x == nil {
			e.buf.WriteString("null")
			return nil
		}
		return e.date(*x)
	case Appender:
		b, err := x.AppendEJSON(e.buf.AvailableBuffer())
		if err != nil {
			return err
		}
		e.buf.Write(b)
		return nil
	case json.RawMessage:
		return e.raw(x)
	case []byte:
		e.binary(x)
		return nil
	case RegExp:
		e.regexp(x)
		return nil
	case Obj:
		return e.obj(x, depth)
	case map[string]any:
		return e.stringMap(x, depth)
	case []any:
		e.buf.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
		e.buf.WriteByte(']')
		return nil
	}
	return e.reflectValue(reflect.ValueOf(v), depth)
}

func (e *encoder) date(t time.Time) error {
	if err := checkDate(t); err != nil {
		return err
	}
	e.buf.WriteString(`{"$date":`)
	e.int(t.UnixMilli())
	e.buf.WriteByte('}')
	return nil
}

// checkDate refuses a time outside JavaScript's Date range.
func checkDate(t time.Time) error {
	if y := t.Year(); y < -271821 || y > 275760 {
		return fmt.Errorf("%w: time %s outside JavaScript's Date range", ErrMarshal, t)
	}
	if math.Abs(float64(t.UnixMilli())) > maxDateMs {
		return fmt.Errorf("%w: time %s outside JavaScript's Date range", ErrMarshal, t)
	}
	return nil
}

// int writes n in decimal without a temporary string.
func (e *encoder) int(n int64) {
	var tmp [20]byte
	e.buf.Write(strconv.AppendInt(tmp[:0], n, 10))
}

func (e *encoder) binary(b []byte) {
	e.buf.WriteString(`{"$binary":"`)
	e.buf.WriteString(base64.StdEncoding.EncodeToString(b))
	e.buf.WriteString(`"}`)
}

func (e *encoder) regexp(r RegExp) {
	e.buf.WriteString(`{"$regexp":`)
	writeString(&e.buf, r.Source)
	e.buf.WriteString(`,"$flags":`)
	writeString(&e.buf, r.Flags)
	e.buf.WriteByte('}')
}

func (e *encoder) raw(b json.RawMessage) error {
	if len(b) == 0 {
		e.buf.WriteString("null")
		return nil
	}
	if err := json.Compact(&e.buf, b); err != nil {
		return fmt.Errorf("%w: invalid json.RawMessage: %v", ErrMarshal, err)
	}
	return nil
}

// float writes f as encoding/json does, and NaN/±Inf as $InfNaN.
func (e *encoder) float(f float64, bits int) {
	switch {
	case math.IsNaN(f):
		e.buf.WriteString(`{"$InfNaN":0}`)
		return
	case math.IsInf(f, 1):
		e.buf.WriteString(`{"$InfNaN":1}`)
		return
	case math.IsInf(f, -1):
		e.buf.WriteString(`{"$InfNaN":-1}`)
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	e.buf.Write(b)
}

// member is one key of an object being written.
type member struct {
	key string
	val any
	rv  reflect.Value // used when val is nil and rv is valid
}

// object writes members in order, escaping the object when its key set
// would read as a special form.
func (e *encoder) object(ms []member, depth int) error {
	escaped := len(ms) == 1 && specialKey(ms[0].key) || len(ms) == 2 && specialPair(ms[0].key, ms[1].key)
	if escaped {
		e.buf.Write(escapeBegin)
	}
	e.buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		writeString(&e.buf, m.key)
		e.buf.WriteByte(':')
		var err error
		if m.rv.IsValid() {
			err = e.reflectValue(m.rv, depth+1)
		} else {
			err = e.value(m.val, depth+1)
		}
		if err != nil {
			return err
		}
	}
	e.buf.WriteByte('}')
	if escaped {
		e.buf.WriteByte('}')
	}
	return nil
}

// members returns a slice of n members, backed by stack when n fits.
func members(stack *[stackMembers]member, n int) []member {
	if n <= len(stack) {
		return stack[:0:n]
	}
	return make([]member, 0, n)
}

func (e *encoder) obj(o Obj, depth int) error {
	var stack [stackMembers]member
	ms := members(&stack, len(o))
	for _, kv := range o {
		ms = append(ms, member{key: kv.Key, val: kv.Value})
	}
	return e.object(ms, depth)
}

func (e *encoder) stringMap(m map[string]any, depth int) error {
	if m == nil {
		e.buf.WriteString("null")
		return nil
	}
	var stack [stackMembers]member
	ms := members(&stack, len(m))
	for k, v := range m {
		ms = append(ms, member{key: k, val: v})
	}
	sortMembers(ms)
	return e.object(ms, depth)
}

func (e *encoder) reflectValue(v reflect.Value, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if !v.IsValid() {
		e.buf.WriteString("null")
		return nil
	}
	t := v.Type()
	if t.Implements(appenderT) && (t.Kind() != reflect.Pointer || !v.IsNil()) {
		return e.value(v.Interface().(Appender), depth)
	}
	switch t {
	case timeType:
		return e.date(v.Interface().(time.Time))
	case rawType:
		return e.raw(v.Bytes())
	case regexpType:
		e.regexp(v.Interface().(RegExp))
		return nil
	case objType:
		return e.obj(v.Interface().(Obj), depth)
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && t.Implements(marshalerT) {
		return e.marshaler(v)
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && t.Implements(textMarshT) {
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMarshal, err)
		}
		writeString(&e.buf, string(b))
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		e.buf.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32:
		e.float(v.Float(), 32)
	case reflect.Float64:
		e.float(v.Float(), 64)
	case reflect.String:
		writeString(&e.buf, v.String())
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf.WriteString("null")
			return nil
		}
		if t.Kind() == reflect.Pointer && t.Implements(marshalerT) && t.Elem() != timeType {
			return e.marshaler(v)
		}
		return e.reflectValue(v.Elem(), depth+1)
	case reflect.Slice:
		if v.IsNil() {
			e.buf.WriteString("null")
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && !t.Elem().Implements(marshalerT) && !t.Elem().Implements(textMarshT) {
			e.binary(v.Convert(byteSliceT).Bytes())
			return nil
		}
		return e.array(v, depth)
	case reflect.Array:
		return e.array(v, depth)
	case reflect.Map:
		return e.reflectMap(v, depth)
	case reflect.Struct:
		return e.structValue(v, depth)
	default:
		return fmt.Errorf("%w: %s", ErrMarshal, t)
	}
	return nil
}

func (e *encoder) marshaler(v reflect.Value) error {
	b, err := v.Interface().(json.Marshaler).MarshalJSON()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMarshal, err)
	}
	return e.raw(b)
}

func (e *encoder) array(v reflect.Value, depth int) error {
	e.buf.WriteByte('[')
	for i := 0; i < v.Len(); i++ {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		if err := e.reflectValue(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	e.buf.WriteByte(']')
	return nil
}

func (e *encoder) reflectMap(v reflect.Value, depth int) error {
	if v.IsNil() {
		e.buf.WriteString("null")
		return nil
	}
	kt := v.Type().Key()
	type kv struct {
		k string
		v reflect.Value
	}
	kvs := make([]kv, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		k := it.Key()
		var ks string
		switch {
		case kt.Kind() == reflect.String:
			ks = k.String()
		case kt.Implements(textMarshT):
			b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return fmt.Errorf("%w: map key: %v", ErrMarshal, err)
			}
			ks = string(b)
		case k.CanInt():
			ks = strconv.FormatInt(k.Int(), 10)
		case k.CanUint():
			ks = strconv.FormatUint(k.Uint(), 10)
		default:
			return fmt.Errorf("%w: map key type %s", ErrMarshal, kt)
		}
		kvs = append(kvs, kv{ks, it.Value()})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	ms := make([]member, len(kvs))
	for i, x := range kvs {
		ms[i] = member{key: x.k, rv: x.v}
	}
	return e.object(ms, depth)
}

// sortMembers sorts ms by key (an insertion sort: objects are small).
func sortMembers(ms []member) {
	if len(ms) > stackMembers {
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].key < ms[j-1].key; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// field is an encodable struct field.
type field struct {
	name      string
	index     []int
	omitEmpty bool
	omitZero  bool
}

var fieldCache sync.Map // reflect.Type -> []field

func structFields(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	var out []field
	seen := map[string]int{} // name -> depth it was found at
	var walk func(t reflect.Type, index []int, depth int)
	walk = func(t reflect.Type, index []int, depth int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			ft := sf.Type
			if sf.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, idx, depth+1)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if d, dup := seen[name]; dup && d <= depth {
				continue // a shallower field of that name wins
			}
			seen[name] = depth
			out = slices.DeleteFunc(out, func(f field) bool { return f.name == name })
			out = append(out, field{name: name, index: idx,
				omitEmpty: strings.Contains(","+opts+",", ",omitempty,"),
				omitZero:  strings.Contains(","+opts+",", ",omitzero,")})
		}
	}
	walk(t, nil, 0)
	fieldCache.Store(t, out)
	return out
}

func (e *encoder) structValue(v reflect.Value, depth int) error {
	fs := structFields(v.Type())
	ms := make([]member, 0, len(fs))
	for _, f := range fs {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || !fv.CanInterface() {
			continue // through a nil embedded pointer, or unexported
		}
		if f.omitEmpty && isEmptyValue(fv) {
			continue
		}
		if f.omitZero && isZeroValue(fv) {
			continue
		}
		ms = append(ms, member{key: f.name, rv: fv})
	}
	return e.object(ms, depth)
}

func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func isZeroValue(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

// writeString writes s as a JSON string: like encoding/json, but without
// escaping <, > and & (JSON.stringify does not).
func writeString(buf *bytes.Buffer, s string) {
	buf.Write(jsonstr.Append(buf.AvailableBuffer(), s, false))
}
