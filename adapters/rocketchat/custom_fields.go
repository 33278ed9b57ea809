package rocketchat

// custom_fields.go: livechat custom fields (Rocket.Chat's
// rocketchat_livechat_custom_field), defined in configuration. Only defined
// keys are accepted (invalid-custom-field), a value must match the field's
// regexp, visitor-scope values live on the visitor (model.Visitor.Fields,
// which LiveChat agents see as customer session fields) and room-scope
// values on the conversation, as thread properties of namespace
// Config.RoomFieldNamespace (declared by the configuration, so LiveChat
// agents see them as thread properties).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// CustomField is one definition (see configs.CustomField).
type CustomField struct {
	ID, Label, Scope, Visibility, Type, Options, Regexp, DefaultValue string
	Required, Public, Searchable                                      bool
}

// fieldDef is a definition with its regexp compiled.
type fieldDef struct {
	CustomField
	re *regexp.Regexp
}

// initFields compiles the definitions; New reports a bad regexp.
func (s *Surface) initFields() error {
	s.fields = make(map[string]*fieldDef, len(s.cfg.CustomFields))
	for _, f := range s.cfg.CustomFields {
		d := &fieldDef{CustomField: f}
		if f.Regexp != "" {
			re, err := regexp.Compile(f.Regexp)
			if err != nil {
				return fmt.Errorf("custom field %s: %w", f.ID, err)
			}
			d.re = re
		}
		s.fields[f.ID] = d
	}
	return nil
}

// fieldDoc is the definition as GET livechat/custom-fields lists it.
func fieldDoc(f *fieldDef) map[string]any {
	return map[string]any{"_id": f.ID, "label": f.Label, "scope": f.Scope, "visibility": f.Visibility,
		"regexp": f.Regexp, "searchable": f.Searchable, "type": f.Type, "required": f.Required,
		"defaultValue": f.DefaultValue, "options": f.Options, "public": f.Public}
}

// publicFields is what livechat/config and getInitialData give the widget
// (Rocket.Chat EE's getLivechatCustomFields, checked: public fields'
// _id, label, regexp, required, type, defaultValue, options as a list).
func (s *Surface) publicFields() []any {
	out := []any{}
	for _, f := range s.sortedFields() {
		if !f.Public {
			continue
		}
		m := map[string]any{"_id": f.ID, "label": f.Label, "regexp": f.Regexp, "required": f.Required,
			"type": f.Type, "defaultValue": f.DefaultValue}
		if f.Options != "" {
			var opts []any
			for _, o := range strings.Split(f.Options, ",") {
				opts = append(opts, strings.TrimSpace(o))
			}
			m["options"] = opts
		}
		out = append(out, m)
	}
	return out
}

// sortedFields lists the definitions by label, then id (the route's
// default sort {label: 1}).
func (s *Surface) sortedFields() []*fieldDef {
	out := make([]*fieldDef, 0, len(s.fields))
	for _, f := range s.fields {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// restCustomFieldList is GET livechat/custom-fields (§5.22.1): offset,
// count and text (a case-insensitive match on label or _id).
func (s *Surface) restCustomFieldList(c *gin.Context, _ *restReq) (map[string]any, error) {
	offset, count := paging(c)
	text := strings.ToLower(c.Query("text"))
	all := []any{}
	for _, f := range s.sortedFields() {
		if text == "" || strings.Contains(strings.ToLower(f.Label), text) || strings.Contains(strings.ToLower(f.ID), text) {
			all = append(all, fieldDoc(f))
		}
	}
	page := all[min(offset, len(all)):]
	if count > 0 && len(page) > count {
		page = page[:count]
	}
	return map[string]any{"customFields": page, "count": len(page), "offset": offset, "total": len(all)}, nil
}

// restCustomFieldGet is GET livechat/custom-fields/:_id (§5.22.2).
func (s *Surface) restCustomFieldGet(c *gin.Context, _ *restReq) (map[string]any, error) {
	if f, ok := s.fields[c.Param("_id")]; ok {
		return map[string]any{"customField": fieldDoc(f)}, nil
	}
	return map[string]any{"customField": nil}, nil
}

// checkField is Livechat.setCustomFields' check (checked): the key must be
// a defined field (invalid-custom-field) and the value match its regexp
// (the error is the i18n text "Invalid value for <key> field").
func (s *Surface) checkField(key, value string) (*fieldDef, error) {
	f, ok := s.fields[key]
	if !ok {
		return nil, errInvalidField
	}
	if f.re != nil && !f.re.MatchString(value) {
		return nil, newErr("Invalid value for "+key+" field", "")
	}
	return f, nil
}

// errFieldNotStored is Rocket.Chat's API.v1.failure() when a room-scope
// field has no open room of the token to go to.
var errFieldNotStored = &failC{body: map[string]any{}}

// setCustomFields checks every field, then writes visitor-scope values on
// the visitor and room-scope ones on the visitor's open room;
// overwrite:false keeps an existing value.
func (s *Surface) setCustomFields(ctx context.Context, v model.Visitor, fields []customField) (model.Visitor, error) {
	visitorUpd := map[string]string{}
	roomUpd := map[string]json.RawMessage{}
	var conv model.Conversation
	for _, cf := range fields {
		f, err := s.checkField(cf.key, cf.value)
		if err != nil {
			return model.Visitor{}, err
		}
		if f.Scope != "room" {
			if !cf.overwrite && v.Fields[cf.key] != "" {
				continue
			}
			visitorUpd[cf.key] = cf.value
			continue
		}
		if conv.ID == "" {
			c, open, err := s.d.OpenConversation(ctx, v.ID)
			if err != nil {
				return model.Visitor{}, err
			}
			if !open {
				return model.Visitor{}, errFieldNotStored
			}
			conv = c
		}
		if _, has := conv.Props[s.cfg.RoomFieldNamespace][cf.key]; has && !cf.overwrite {
			continue
		}
		roomUpd[cf.key] = jsonString(cf.value)
	}
	if len(roomUpd) > 0 {
		err := s.d.UpdateProperties(ctx, desk.PropTarget{Location: desk.LocThread, Visitor: v.ID, Conv: conv.ID}, visitorAuthor(v),
			map[string]map[string]json.RawMessage{s.cfg.RoomFieldNamespace: roomUpd}, "")
		if errors.Is(err, desk.ErrInvalid) {
			return model.Visitor{}, errInvalidField
		}
		if err != nil {
			return model.Visitor{}, deskErr(err)
		}
	}
	if len(visitorUpd) == 0 {
		return v, nil
	}
	nv, err := s.d.UpdateVisitor(ctx, v.ID, desk.VisitorUpdate{Fields: visitorUpd})
	if errors.Is(err, desk.ErrInvalid) {
		return model.Visitor{}, errInvalidField
	}
	return nv, err
}

// roomFields is a conversation's room-scope values ({key: value}), for
// the room's livechatData.
func (s *Surface) roomFields(c *model.Conversation) map[string]any {
	out := map[string]any{}
	for k, raw := range c.Props[s.cfg.RoomFieldNamespace] {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			out[k] = v
		}
	}
	return out
}
