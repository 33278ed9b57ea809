package desk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"
	"unicode/utf8"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// Properties are namespaced key-value pairs set on a chat (the visitor), a
// thread (a conversation) or an event: {"<namespace>": {"<name>": value}}.
// Every property is declared first (configuration file or Configuration
// API): its type, the locations it may be set at, who may read and write
// it there, and optionally the values it may take.

// PropType is a property's value type.
type PropType string

const (
	PropInt    PropType = "int" // int32
	PropBool   PropType = "bool"
	PropString PropType = "string"
	// PropTokenized is a string split into tokens for search; stored and
	// validated as a string.
	PropTokenized PropType = "tokenized_string"
)

// PropLocation is where a property is set.
type PropLocation string

const (
	LocChat   PropLocation = "chat"
	LocThread PropLocation = "thread"
	LocEvent  PropLocation = "event"
)

// PropRole is who reads or writes a property.
type PropRole string

const (
	RoleAgent    PropRole = "agent"
	RoleCustomer PropRole = "customer"
)

// Perm is one role's access at one location. It reads and writes as
// LiveChat's list form: ["read", "write"].
type Perm struct {
	Read, Write bool
}

// MarshalJSON renders ["read","write"] (a subset).
func (p Perm) MarshalJSON() ([]byte, error) {
	out := []string{}
	if p.Read {
		out = append(out, "read")
	}
	if p.Write {
		out = append(out, "write")
	}
	return json.Marshal(out)
}

// UnmarshalJSON accepts ["read","write"] or {"read":bool,"write":bool}.
func (p *Perm) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		return p.setList(list)
	}
	var obj struct {
		Read  bool `json:"read"`
		Write bool `json:"write"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("%w: access must be a list of read/write", ErrInvalid)
	}
	p.Read, p.Write = obj.Read, obj.Write
	return nil
}

// ParsePerm reads ["read","write"] (a subset).
func ParsePerm(list []string) (Perm, error) {
	var p Perm
	return p, p.setList(list)
}

func (p *Perm) setList(list []string) error {
	*p = Perm{}
	for _, s := range list {
		switch s {
		case "read":
			p.Read = true
		case "write":
			p.Write = true
		default:
			return fmt.Errorf("%w: unknown access %q (read, write)", ErrInvalid, s)
		}
	}
	return nil
}

// RoleAccess is the access of both roles at one location. Write implies
// nothing about Read: a write-only property is allowed.
type RoleAccess struct {
	Agent    Perm `json:"agent"`
	Customer Perm `json:"customer"`
}

func (a RoleAccess) of(r PropRole) Perm {
	if r == RoleCustomer {
		return a.Customer
	}
	return a.Agent
}

// PropRange bounds an int property: From <= v <= To.
type PropRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// PropDef declares one property.
type PropDef struct {
	Namespace   string   `json:"namespace"`
	Name        string   `json:"name"`
	Type        PropType `json:"type"`
	Description string   `json:"description,omitempty"`
	// Access lists the locations the property may be set at, with each
	// role's access there. A location absent here refuses the property.
	Access map[PropLocation]RoleAccess `json:"access"`
	// Domain, if not empty, is the set of allowed values.
	Domain []json.RawMessage `json:"domain,omitempty"`
	// Range, if set, bounds an int property (exclusive with Domain).
	Range *PropRange `json:"range,omitempty"`
}

// Limits of property declarations and values.
const (
	maxPropName     = 128
	maxPropString   = 4096
	maxPropDomain   = 100
	maxPropsPerCall = 100
)

func validPropName(s string) bool {
	return s != "" && len(s) <= maxPropName && utf8.ValidString(s)
}

// Validate checks a declaration: names, type, at least one known
// location, domain values of the type, a range only on ints.
func (d *PropDef) Validate() error {
	switch {
	case !validPropName(d.Namespace):
		return fmt.Errorf("%w: property namespace must be 1-%d characters", ErrInvalid, maxPropName)
	case !validPropName(d.Name):
		return fmt.Errorf("%w: property name must be 1-%d characters", ErrInvalid, maxPropName)
	}
	switch d.Type {
	case PropInt, PropBool, PropString, PropTokenized:
	default:
		return fmt.Errorf("%w: property %s.%s: unknown type %q (int, bool, string, tokenized_string)", ErrInvalid, d.Namespace, d.Name, d.Type)
	}
	if len(d.Access) == 0 {
		return fmt.Errorf("%w: property %s.%s: access names no location", ErrInvalid, d.Namespace, d.Name)
	}
	for loc := range d.Access {
		switch loc {
		case LocChat, LocThread, LocEvent:
		default:
			return fmt.Errorf("%w: property %s.%s: unknown location %q (chat, thread, event)", ErrInvalid, d.Namespace, d.Name, loc)
		}
	}
	if len(d.Domain) > 0 && d.Range != nil {
		return fmt.Errorf("%w: property %s.%s: domain and range are exclusive", ErrInvalid, d.Namespace, d.Name)
	}
	if len(d.Domain) > maxPropDomain {
		return fmt.Errorf("%w: property %s.%s: domain has more than %d values", ErrInvalid, d.Namespace, d.Name, maxPropDomain)
	}
	for _, v := range d.Domain {
		if err := d.checkType(v); err != nil {
			return fmt.Errorf("%w (in domain)", err)
		}
	}
	if r := d.Range; r != nil {
		if d.Type != PropInt {
			return fmt.Errorf("%w: property %s.%s: range needs type int", ErrInvalid, d.Namespace, d.Name)
		}
		if r.From > r.To || r.From < math.MinInt32 || r.To > math.MaxInt32 {
			return fmt.Errorf("%w: property %s.%s: range needs from <= to within int32", ErrInvalid, d.Namespace, d.Name)
		}
	}
	return nil
}

// checkType checks that v is a JSON value of the property's type.
func (d *PropDef) checkType(v json.RawMessage) error {
	bad := fmt.Errorf("%w: property %s.%s must be of type %s", ErrInvalid, d.Namespace, d.Name, d.Type)
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return bad
	}
	switch d.Type {
	case PropInt:
		n, ok := x.(json.Number)
		if !ok {
			return bad
		}
		i, err := n.Int64()
		if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
			return bad
		}
	case PropBool:
		if _, ok := x.(bool); !ok {
			return bad
		}
	case PropString, PropTokenized:
		s, ok := x.(string)
		if !ok {
			return bad
		}
		if len(s) > maxPropString {
			return fmt.Errorf("%w: property %s.%s is longer than %d bytes", ErrInvalid, d.Namespace, d.Name, maxPropString)
		}
	}
	return nil
}

// checkValue checks type, domain and range.
func (d *PropDef) checkValue(v json.RawMessage) error {
	if err := d.checkType(v); err != nil {
		return err
	}
	if len(d.Domain) > 0 {
		if !slices.ContainsFunc(d.Domain, func(w json.RawMessage) bool { return sameJSON(v, w) }) {
			return fmt.Errorf("%w: property %s.%s: value outside its domain", ErrInvalid, d.Namespace, d.Name)
		}
	}
	if r := d.Range; r != nil {
		var n int64
		if json.Unmarshal(v, &n) != nil || n < r.From || n > r.To {
			return fmt.Errorf("%w: property %s.%s: value outside [%d, %d]", ErrInvalid, d.Namespace, d.Name, r.From, r.To)
		}
	}
	return nil
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// PropsMetaKey is the store meta value holding the properties registered
// through the Configuration API (a JSON array of PropDef).
const PropsMetaKey = "core.properties"

// PropsDroppingMetaKey is the store meta value listing the properties
// unregistered whose stored values are still being deleted (a JSON array
// of {"namespace","name"}); see Properties.Unregister.
const PropsDroppingMetaKey = "core.properties.dropping"

type propKey struct{ ns, name string }

// propName is a propKey as stored in PropsDroppingMetaKey.
type propName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Properties is the property configuration: the declarations from the
// configuration file (fixed) and those registered at run time (kept in
// the store's meta, so they survive restarts). Safe for concurrent use.
type Properties struct {
	st store.Store

	mu         sync.RWMutex
	static     map[propKey]PropDef
	registered map[propKey]PropDef
	// dropping are unregistered properties whose values are still
	// stored; the same name cannot be registered again until they are
	// gone (see Unregister, RunDrops).
	dropping map[propKey]struct{}
	// wake tells RunDrops of a new unregistration.
	wake chan struct{}
}

// Errors of the registry (wrapping ErrInvalid / ErrNotFound).
var (
	// ErrPropExists: register_property of a property already declared.
	ErrPropExists = fmt.Errorf("%w: property already exists", ErrInvalid)
	// ErrPropDropping: register_property of a name unregistered so
	// recently that its old values are still being deleted.
	ErrPropDropping = fmt.Errorf("%w: the values of this property's previous registration are still being deleted; try again shortly", ErrInvalid)
)

// NewProperties returns a registry with defs from configuration; call
// Load to read the registered ones (Desk.Load does).
func NewProperties(st store.Store, defs []PropDef) (*Properties, error) {
	p := &Properties{st: st, static: make(map[propKey]PropDef), registered: make(map[propKey]PropDef),
		dropping: make(map[propKey]struct{}), wake: make(chan struct{}, 1)}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		k := propKey{d.Namespace, d.Name}
		if _, dup := p.static[k]; dup {
			return nil, fmt.Errorf("%w: property %s.%s declared twice", ErrInvalid, d.Namespace, d.Name)
		}
		p.static[k] = d
	}
	return p, nil
}

// Load reads the registered properties from the store.
func (p *Properties) Load(ctx context.Context) error {
	if p.st == nil {
		return nil
	}
	var list []PropDef
	if err := p.metaJSON(ctx, PropsMetaKey, &list); err != nil {
		return err
	}
	var dropping []propName
	if err := p.metaJSON(ctx, PropsDroppingMetaKey, &dropping); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.registered = make(map[propKey]PropDef, len(list))
	for _, d := range list {
		p.registered[propKey{d.Namespace, d.Name}] = d
	}
	p.dropping = make(map[propKey]struct{}, len(dropping))
	for _, n := range dropping {
		p.dropping[propKey{n.Namespace, n.Name}] = struct{}{}
	}
	if len(p.dropping) > 0 {
		p.poke()
	}
	return nil
}

// metaJSON decodes the meta value key into v; an absent value leaves v.
func (p *Properties) metaJSON(ctx context.Context, key string, v any) error {
	b, err := p.st.Meta(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("properties: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("properties: decode %s: %w", key, err)
	}
	return nil
}

func (p *Properties) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Register declares a property at run time and stores it durably.
// ErrPropExists if it is declared already.
func (p *Properties) Register(ctx context.Context, d PropDef) error {
	if err := d.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := propKey{d.Namespace, d.Name}
	if _, ok := p.static[k]; ok {
		return ErrPropExists
	}
	if _, ok := p.registered[k]; ok {
		return ErrPropExists
	}
	if _, ok := p.dropping[k]; ok {
		return ErrPropDropping
	}
	next := make(map[propKey]PropDef, len(p.registered)+1)
	for kk, v := range p.registered {
		next[kk] = v
	}
	next[k] = d
	if err := p.save(ctx, next, p.dropping); err != nil {
		return err
	}
	p.registered = next
	return nil
}

// Unregister removes a property registered at run time. Its values are
// at once no longer shown nor writable, and are deleted from every chat,
// thread and event by RunDrops (issue 16: values left stored would
// reappear, under new access rules, if the name were registered again);
// until that is done, registering the name again is refused
// (ErrPropDropping). The unregistration and the drop still owed are one
// commit, so a gateway stopped meanwhile resumes the drop at its next
// start. Properties from the configuration file cannot be unregistered
// (ErrForbidden).
func (p *Properties) Unregister(ctx context.Context, ns, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := propKey{ns, name}
	if _, ok := p.static[k]; ok {
		return fmt.Errorf("%w: property %s.%s is set in the configuration file", ErrForbidden, ns, name)
	}
	if _, ok := p.registered[k]; !ok {
		return fmt.Errorf("property %s.%s: %w", ns, name, ErrNotFound)
	}
	next := make(map[propKey]PropDef, len(p.registered))
	for kk, v := range p.registered {
		if kk != k {
			next[kk] = v
		}
	}
	dropping := maps.Clone(p.dropping)
	dropping[k] = struct{}{}
	if err := p.save(ctx, next, dropping); err != nil {
		return err
	}
	p.registered, p.dropping = next, dropping
	p.poke()
	return nil
}

// save stores the registered properties and the drops owed, in one commit.
func (p *Properties) save(ctx context.Context, m map[propKey]PropDef, dropping map[propKey]struct{}) error {
	if p.st == nil {
		return nil
	}
	list := make([]PropDef, 0, len(m))
	for _, d := range m {
		list = append(list, d)
	}
	sortDefs(list)
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	names := make([]propName, 0, len(dropping))
	for k := range dropping {
		names = append(names, propName{k.ns, k.name})
	}
	sort.Slice(names, func(i, j int) bool {
		return names[i].Namespace < names[j].Namespace || names[i].Namespace == names[j].Namespace && names[i].Name < names[j].Name
	})
	d, err := json.Marshal(names)
	if err != nil {
		return err
	}
	return p.st.Commit(context.WithoutCancel(ctx), &store.Batch{Meta: map[string][]byte{PropsMetaKey: b, PropsDroppingMetaKey: d}})
}

func sortDefs(list []PropDef) {
	sort.Slice(list, func(i, j int) bool {
		if list[i].Namespace != list[j].Namespace {
			return list[i].Namespace < list[j].Namespace
		}
		return list[i].Name < list[j].Name
	})
}

// List returns the declared properties of namespace ns ("" = all), sorted.
func (p *Properties) List(ns string) []PropDef {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []PropDef
	for _, m := range []map[propKey]PropDef{p.static, p.registered} {
		for k, d := range m {
			if ns == "" || k.ns == ns {
				out = append(out, d)
			}
		}
	}
	sortDefs(out)
	return out
}

// Lookup returns one declaration.
func (p *Properties) Lookup(ns, name string) (PropDef, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	k := propKey{ns, name}
	if d, ok := p.static[k]; ok {
		return d, true
	}
	d, ok := p.registered[k]
	return d, ok
}

func (p *Properties) hasNamespace(ns string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, m := range []map[propKey]PropDef{p.static, p.registered} {
		for k := range m {
			if k.ns == ns {
				return true
			}
		}
	}
	return false
}

// CanRead reports whether role may read ns.name at loc. Undeclared
// properties are readable by nobody.
func (p *Properties) CanRead(role PropRole, loc PropLocation, ns, name string) bool {
	d, ok := p.Lookup(ns, name)
	if !ok {
		return false
	}
	a, ok := d.Access[loc]
	return ok && a.of(role).Read
}

// Readable returns the part of props role may read at loc (nil when
// nothing is left). props is not modified.
func (p *Properties) Readable(role PropRole, loc PropLocation, props map[string]map[string]json.RawMessage) map[string]map[string]json.RawMessage {
	var out map[string]map[string]json.RawMessage
	for ns, m := range props {
		for name, v := range m {
			if !p.CanRead(role, loc, ns, name) {
				continue
			}
			if out == nil {
				out = make(map[string]map[string]json.RawMessage)
			}
			if out[ns] == nil {
				out[ns] = make(map[string]json.RawMessage)
			}
			out[ns][name] = v
		}
	}
	return out
}

// ReadableNames is Readable for a deletion's {ns: [names]}.
func (p *Properties) ReadableNames(role PropRole, loc PropLocation, names map[string][]string) map[string][]string {
	var out map[string][]string
	for ns, list := range names {
		for _, n := range list {
			if p.CanRead(role, loc, ns, n) {
				if out == nil {
					out = make(map[string][]string)
				}
				out[ns] = append(out[ns], n)
			}
		}
	}
	return out
}

// RoleOf is the property role of an author; ok is false for the system,
// which may read and write every declared property.
func RoleOf(a model.Author) (PropRole, bool) {
	switch a.Kind {
	case model.AuthorVisitor:
		return RoleCustomer, true
	case model.AuthorAgent:
		return RoleAgent, true
	}
	return "", false
}

// lookupFor finds the declaration of ns.name and checks that it may be
// written at loc by author: ErrInvalid for an unknown namespace or
// property or a location it is not declared at, ErrForbidden without
// write access.
func (p *Properties) lookupFor(by model.Author, loc PropLocation, ns, name string) (PropDef, error) {
	d, ok := p.Lookup(ns, name)
	if !ok {
		if !p.hasNamespace(ns) {
			return d, fmt.Errorf("%w: unknown property namespace %.64q", ErrInvalid, ns)
		}
		return d, fmt.Errorf("%w: unknown property %.64q in namespace %.64q", ErrInvalid, name, ns)
	}
	a, ok := d.Access[loc]
	if !ok {
		return d, fmt.Errorf("%w: property %s.%s cannot be set on a %s", ErrInvalid, ns, name, loc)
	}
	if role, ok := RoleOf(by); ok && !a.of(role).Write {
		return d, fmt.Errorf("%w: %s may not write property %s.%s on a %s", ErrForbidden, role, ns, name, loc)
	} else if !ok && by.Kind != model.AuthorSystem {
		return d, ErrForbidden
	}
	return d, nil
}

// CheckUpdate validates an update of props at loc by author (type,
// location, write access, domain). Authorization errors win over
// validation errors of other properties only in map order: callers
// should not depend on which of several errors is reported.
func (p *Properties) CheckUpdate(by model.Author, loc PropLocation, props map[string]map[string]json.RawMessage) error {
	n := 0
	for ns, m := range props {
		if len(m) == 0 {
			return fmt.Errorf("%w: property namespace %.64q is empty", ErrInvalid, ns)
		}
		for name, v := range m {
			if n++; n > maxPropsPerCall {
				return fmt.Errorf("%w: more than %d properties", ErrInvalid, maxPropsPerCall)
			}
			d, err := p.lookupFor(by, loc, ns, name)
			if err != nil {
				return err
			}
			if err := d.checkValue(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckDelete validates a deletion of names at loc by author (location
// and write access).
func (p *Properties) CheckDelete(by model.Author, loc PropLocation, names map[string][]string) error {
	n := 0
	for ns, list := range names {
		if len(list) == 0 {
			return fmt.Errorf("%w: property namespace %.64q lists no names", ErrInvalid, ns)
		}
		for _, name := range list {
			if n++; n > maxPropsPerCall {
				return fmt.Errorf("%w: more than %d properties", ErrInvalid, maxPropsPerCall)
			}
			if _, err := p.lookupFor(by, loc, ns, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- commands --------------------------------------------------------------

// PropTarget names what properties are set on: a chat (Visitor), a thread
// (Conv) or an event (Conv and Seq).
type PropTarget struct {
	Location PropLocation
	Visitor  model.VisitorID
	Conv     model.ConvID
	Seq      uint64
}

// PropsUpdate is a property update to apply: Set values (merged into the
// target's) or Delete names.
type PropsUpdate struct {
	Set    map[string]map[string]json.RawMessage
	Delete map[string][]string
}

// UpdateProperties sets props on a chat, thread or event. Only changed
// keys are published (hub.Notice.Props); a no-op update publishes
// nothing.
func (d *Desk) UpdateProperties(ctx context.Context, t PropTarget, by model.Author, props map[string]map[string]json.RawMessage, session string) error {
	if len(props) == 0 {
		return fmt.Errorf("%w: properties are empty", ErrInvalid)
	}
	if err := d.props.CheckUpdate(by, t.Location, props); err != nil {
		return err
	}
	return d.changeProps(ctx, t, by, PropsUpdate{Set: props}, session)
}

// DeleteProperties removes properties {ns: [names]} from a chat, thread
// or event. Names not set are ignored (and not published).
func (d *Desk) DeleteProperties(ctx context.Context, t PropTarget, by model.Author, names map[string][]string, session string) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: properties are empty", ErrInvalid)
	}
	if err := d.props.CheckDelete(by, t.Location, names); err != nil {
		return err
	}
	return d.changeProps(ctx, t, by, PropsUpdate{Delete: names}, session)
}

// Properties returns the property configuration.
func (d *Desk) Properties() *Properties { return d.props }

// apply merges u into props and returns the result and the effective
// change (nil maps when nothing changed).
func (u PropsUpdate) apply(props map[string]map[string]json.RawMessage) (map[string]map[string]json.RawMessage, PropsUpdate) {
	out := make(map[string]map[string]json.RawMessage, len(props)+len(u.Set))
	for ns, m := range props {
		out[ns] = make(map[string]json.RawMessage, len(m))
		for k, v := range m {
			out[ns][k] = v
		}
	}
	var eff PropsUpdate
	for ns, m := range u.Set {
		for k, v := range m {
			if old, ok := out[ns][k]; ok && sameJSON(old, v) {
				continue
			}
			if out[ns] == nil {
				out[ns] = make(map[string]json.RawMessage)
			}
			v = compactJSON(v)
			out[ns][k] = v
			if eff.Set == nil {
				eff.Set = make(map[string]map[string]json.RawMessage)
			}
			if eff.Set[ns] == nil {
				eff.Set[ns] = make(map[string]json.RawMessage)
			}
			eff.Set[ns][k] = v
		}
	}
	for ns, list := range u.Delete {
		for _, k := range list {
			if _, ok := out[ns][k]; !ok {
				continue
			}
			delete(out[ns], k)
			if len(out[ns]) == 0 {
				delete(out, ns)
			}
			if eff.Delete == nil {
				eff.Delete = make(map[string][]string)
			}
			if !slices.Contains(eff.Delete[ns], k) {
				eff.Delete[ns] = append(eff.Delete[ns], k)
			}
		}
	}
	for _, l := range eff.Delete {
		sort.Strings(l)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, eff
}

func compactJSON(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}

func (d *Desk) changeProps(ctx context.Context, t PropTarget, by model.Author, u PropsUpdate, session string) error {
	switch t.Location {
	case LocChat:
		return d.onVisitor(ctx, t.Visitor, func(ctx context.Context) error {
			v, err := d.st.Visitor(ctx, t.Visitor)
			if err != nil {
				return fmt.Errorf("visitor %s: %w", t.Visitor, errNotFound(err))
			}
			// A chat exists once it has a thread; its newest thread is
			// what subscribers follow.
			ids, err := d.st.VisitorConversations(ctx, t.Visitor)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if len(ids) == 0 {
				return fmt.Errorf("chat %s: %w", t.Visitor, ErrNotFound)
			}
			c, err := d.st.Conversation(ctx, ids[len(ids)-1])
			if err != nil {
				return fmt.Errorf("conversation: %w", errNotFound(err))
			}
			if err := d.mayAct(c, by); err != nil {
				return err
			}
			var eff PropsUpdate
			v.Props, eff = u.apply(v.Props)
			if eff.Set == nil && eff.Delete == nil {
				return nil
			}
			v.UpdatedAt = d.Now()
			return d.commitProps(ctx, &store.Batch{Visitors: []model.Visitor{v}}, c,
				hub.PropsChange{Location: string(LocChat), Visitor: v.ID, Updated: eff.Set, Deleted: eff.Delete}, session)
		})
	case LocThread, LocEvent:
		return d.onConv(ctx, t.Conv, func(ctx context.Context) error {
			c, err := d.st.Conversation(ctx, t.Conv)
			if err != nil {
				return fmt.Errorf("conversation %s: %w", t.Conv, errNotFound(err))
			}
			if t.Visitor != "" && c.Visitor != t.Visitor {
				return fmt.Errorf("thread %s: %w", t.Conv, ErrNotFound)
			}
			if err := d.mayAct(c, by); err != nil {
				return err
			}
			ch := hub.PropsChange{Location: string(t.Location), Visitor: c.Visitor, Conv: c.ID}
			var eff PropsUpdate
			if t.Location == LocThread {
				c.Props, eff = u.apply(c.Props)
				if eff.Set == nil && eff.Delete == nil {
					return nil
				}
				ch.Updated, ch.Deleted = eff.Set, eff.Delete
				return d.commitProps(ctx, &store.Batch{Convs: []model.Conversation{c}}, c, ch, session)
			}
			evs, err := d.st.Events(ctx, c.ID, t.Seq, 1)
			if err != nil {
				return fmt.Errorf("event: %w", err)
			}
			if len(evs) == 0 || evs[0].Seq != t.Seq || (by.Kind == model.AuthorVisitor && !evs[0].VisibleToVisitor()) {
				return fmt.Errorf("event %d: %w", t.Seq, ErrNotFound)
			}
			ev := evs[0]
			ev.Props, eff = u.apply(ev.Props)
			if eff.Set == nil && eff.Delete == nil {
				return nil
			}
			ch.Seq, ch.Event, ch.Updated, ch.Deleted = ev.Seq, ev.ID, eff.Set, eff.Delete
			ch.Visibility = ev.Visibility
			// With the conversation record, unchanged, for its revision
			// check (see changeEvent).
			return d.commitProps(ctx, &store.Batch{Convs: []model.Conversation{c}, Updates: []model.Event{ev}}, c, ch, session)
		})
	default:
		return fmt.Errorf("%w: unknown property location %q", ErrInvalid, t.Location)
	}
}

// commitProps writes a property change, with the webhook deliveries it
// owes, and publishes it.
func (d *Desk) commitProps(ctx context.Context, b *store.Batch, c model.Conversation, ch hub.PropsChange, session string) error {
	return d.commitNotice(ctx, b, hub.Notice{Conv: c, Props: &ch, Origin: session})
}

// checkDraftProps validates the properties of events a command appends.
func (d *Desk) checkDraftProps(by model.Author, drafts ...Draft) error {
	for i := range drafts {
		if len(drafts[i].Props) == 0 {
			continue
		}
		if err := d.props.CheckUpdate(by, LocEvent, drafts[i].Props); err != nil {
			return err
		}
	}
	return nil
}
