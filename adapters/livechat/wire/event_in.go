package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"unicode/utf8"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store/files"
)

// Limits of an incoming event's parts that the desk's text limit does not
// cover (LiveChat's own: rich_message ≤ 10 elements, ≤ 13 buttons each).
const (
	MaxCustomID      = 256
	MaxFormFields    = 100
	MaxFormLabel     = 1024
	maxRichElements  = 10
	maxRichButtons   = 13
	maxFormFieldType = 64
)

// EventIn is a v3 event as a client sends it (send_event, and the events of
// start_chat/resume_chat's thread), both sides: the seed's event model
// (message, file, filled_form, system_message, custom, rich_message) with
// both of LiveChat's visibility fields.
type EventIn struct {
	Type       string                                `json:"type"`
	Text       string                                `json:"text"`
	CustomID   string                                `json:"custom_id"`
	Visibility string                                `json:"visibility"`
	Recipients string                                `json:"recipients"`
	Properties map[string]map[string]json.RawMessage `json:"properties"`
	// custom
	Content json.RawMessage `json:"content"`
	// file (name, content_type and size come from the upload)
	URL string `json:"url"`
	// system_message
	SystemMessageType string            `json:"system_message_type"`
	TextVars          map[string]string `json:"text_vars"`
	// filled_form
	FormID   string      `json:"form_id"`
	FormType string      `json:"form_type"`
	Fields   []FormField `json:"fields"`
	// rich_message
	TemplateID string          `json:"template_id"`
	Elements   json.RawMessage `json:"elements"`
}

// EventSide is what differs between the two APIs' send_event.
type EventSide struct {
	// Aud is the sender's side: only agents may send system_message or
	// narrow an event to agents.
	Aud Audience
	// File turns a file event into its body; nil refuses file events.
	File func(e *EventIn) (*model.File, error)
	// FormType names the type (prechat, postchat, ticket) of a configured
	// form; nil or "" leaves the client's form_type.
	FormType func(formID string) string
}

// reservedSubtypes are the core's own system message subtypes: the pushes
// and routing read them, so clients may not send them.
var reservedSubtypes = map[string]bool{model.SysWelcome: true, model.SysStarted: true, model.SysQueued: true,
	model.SysAssigned: true, model.SysTransferred: true, model.SysClosed: true}

// ParseVisibility reads LiveChat's two names for who may see something:
// `visibility` (v3.3+) and the seed's `recipients` (v0.5, still listed by
// the customer API and sent by older clients), each "all" or "agents".
// Either may be given; both must agree. An unknown value, or two that
// disagree, is a validation error: a narrowing field chatgate cannot read
// is refused, never taken as "all".
func ParseVisibility(visibility, recipients string) (model.Visibility, error) {
	var out model.Visibility
	for _, f := range []struct{ name, v string }{{"visibility", visibility}, {"recipients", recipients}} {
		switch f.v {
		case "":
			continue
		case string(model.VisibleAll), string(model.VisibleAgents):
		default:
			return "", Errorf(Validation, "%s must be all or agents", f.name)
		}
		if out != "" && out != model.Visibility(f.v) {
			return "", Errorf(Validation, "visibility and recipients disagree")
		}
		out = model.Visibility(f.v)
	}
	return out, nil
}

// Draft turns the event into a core draft for side, or answers a
// validation error in LiveChat's terms.
func (e *EventIn) Draft(side EventSide) (desk.Draft, error) {
	d := desk.Draft{ClientKey: e.CustomID, Props: e.Properties}
	if len(e.CustomID) > MaxCustomID {
		return d, Errorf(Validation, "custom_id is longer than %d bytes", MaxCustomID)
	}
	vis, err := ParseVisibility(e.Visibility, e.Recipients)
	if err != nil {
		return d, err
	}
	if side.Aud == ForCustomer {
		// A customer's events are the customer's own words: shown to the
		// customer too. Storing one agents-only would hide it from its
		// author (and leave customer-sdk waiting for its push forever),
		// so the narrowing is refused rather than widened.
		if vis == model.VisibleAgents {
			return d, Errorf(Validation, "a customer's events are visible to all (visibility/recipients all)")
		}
		vis = model.VisibleAll
	}
	d.Visibility = vis
	switch e.Type {
	case "message":
		d.Kind, d.Text = model.KindMessage, e.Text
	case "custom":
		if len(e.Content) > 0 && !json.Valid(e.Content) {
			return d, Errorf(Validation, "event.content must be JSON")
		}
		d.Kind, d.Custom, d.Text = model.KindCustom, e.Content, e.Text
	case "file":
		if side.File == nil {
			return d, Errorf(Validation, "file events come from upload_file")
		}
		f, err := side.File(e)
		if err != nil {
			return d, err
		}
		d.Kind, d.File = model.KindFile, f
	case "system_message":
		if side.Aud != ForAgent {
			return d, Errorf(Validation, "Unsupported event type")
		}
		if e.SystemMessageType == "" {
			return d, Errorf(Validation, "event.system_message_type is required")
		}
		if reservedSubtypes[e.SystemMessageType] || len(e.SystemMessageType) > 128 {
			return d, Errorf(Validation, "event.system_message_type is reserved or too long")
		}
		d.Kind, d.Subtype, d.Text, d.Vars = model.KindSystem, e.SystemMessageType, e.Text, e.TextVars
	case "filled_form":
		f, err := e.form(side)
		if err != nil {
			return d, err
		}
		d.Kind, d.Form = model.KindForm, f
	case "rich_message":
		body, err := e.rich()
		if err != nil {
			return d, err
		}
		d.Kind, d.Custom = model.KindRich, body
	case "":
		return d, Errorf(Validation, "event.type is required")
	default:
		return d, Errorf(Validation, "Unsupported event type")
	}
	return d, nil
}

// form checks a filled_form: 1–MaxFormFields fields, each with a type and
// a label or name; answers are kept as the client sent them.
func (e *EventIn) form(side EventSide) (*model.Form, error) {
	if len(e.Fields) == 0 {
		return nil, Errorf(Validation, "event.fields is required")
	}
	if len(e.Fields) > MaxFormFields {
		return nil, Errorf(Validation, "event.fields has more than %d fields", MaxFormFields)
	}
	if len(e.FormID) > MaxCustomID || len(e.FormType) > maxFormFieldType {
		return nil, Errorf(Validation, "event.form_id or form_type is too long")
	}
	f := &model.Form{ID: e.FormID, Type: e.FormType, Fields: make([]model.FormField, 0, len(e.Fields))}
	if side.FormType != nil {
		if t := side.FormType(e.FormID); t != "" {
			f.Type = t
		}
	}
	for i, fl := range e.Fields {
		if fl.Type == "" || len(fl.Type) > maxFormFieldType {
			return nil, Errorf(Validation, "event.fields[%d].type is required (at most %d bytes)", i, maxFormFieldType)
		}
		if fl.Label == "" && fl.Name == "" {
			return nil, Errorf(Validation, "event.fields[%d] needs a label or a name", i)
		}
		if len(fl.Label) > MaxFormLabel || len(fl.Name) > MaxFormLabel || len(fl.ID) > MaxFormLabel ||
			!utf8.ValidString(fl.Label) || !utf8.ValidString(fl.Name) {
			return nil, Errorf(Validation, "event.fields[%d]: label, name or id is too long or not UTF-8", i)
		}
		f.Fields = append(f.Fields, model.FormField(fl))
	}
	return f, nil
}

// rich checks a rich_message (template_id cards|sticker|quick_replies,
// 1–10 elements, ≤ 13 buttons each) and returns its body as the client
// sent it: {"template_id","elements"}.
func (e *EventIn) rich() (json.RawMessage, error) {
	switch e.TemplateID {
	case "cards", "sticker", "quick_replies":
	default:
		return nil, Errorf(Validation, "event.template_id must be cards, sticker or quick_replies")
	}
	// Every element and button must be an object: customer-sdk reads
	// their fields without checking and would crash on a null.
	var els []json.RawMessage
	if json.Unmarshal(e.Elements, &els) != nil || len(els) == 0 || len(els) > maxRichElements {
		return nil, Errorf(Validation, "event.elements must be 1 to %d objects", maxRichElements)
	}
	for i, raw := range els {
		var el struct {
			Buttons []json.RawMessage `json:"buttons"`
		}
		if !isObject(raw) || json.Unmarshal(raw, &el) != nil {
			return nil, Errorf(Validation, "event.elements[%d] must be an object", i)
		}
		if len(el.Buttons) > maxRichButtons {
			return nil, Errorf(Validation, "event.elements[%d] has more than %d buttons", i, maxRichButtons)
		}
		for j, b := range el.Buttons {
			if !isObject(b) {
				return nil, Errorf(Validation, "event.elements[%d].buttons[%d] must be an object", i, j)
			}
		}
	}
	body, err := json.Marshal(struct {
		TemplateID string          `json:"template_id"`
		Elements   json.RawMessage `json:"elements"`
	}{e.TemplateID, e.Elements})
	if err != nil {
		return nil, Errorf(Validation, "event.elements: %v", err)
	}
	return body, nil
}

func isObject(raw json.RawMessage) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '{'
}

// UploadedFile is a file event's body when its url is one upload_file
// returned (…/file-upload/<id>/<name> of a stored upload; any host, as
// the public URL may differ from the request's): LiveChat takes file
// events only for its own CDN, and chatgate keeps the rule on both APIs,
// so that a file event never points anywhere a client chose. Name, type
// and size come from the stored upload, not the client.
func UploadedFile(ctx context.Context, fs *files.Store, raw string) (*model.File, error) {
	bad := Errorf(Validation, "event.url must be a URL returned by upload_file")
	u, err := url.Parse(raw)
	if err != nil || raw == "" || fs == nil {
		return nil, bad
	}
	rest, ok := strings.CutPrefix(u.Path, files.URLPrefix)
	id, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return nil, bad
	}
	f, fh, err := fs.Get(ctx, id)
	if err != nil {
		return nil, bad
	}
	_ = fh.Close()
	return &model.File{Name: f.Name, URL: raw, ContentType: f.ContentType, Size: f.Size}, nil
}
