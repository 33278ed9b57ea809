package wire

import "fmt"

// Form is a configured form as get_form returns it.
type Form struct {
	ID     string         `json:"id"`
	Fields []FormFieldDef `json:"fields"`
	// Type and Group are where the form is asked; not part of get_form's
	// form object.
	Type  string `json:"-"`
	Group int    `json:"-"`
}

// FormFieldDef is one question of a configured form.
type FormFieldDef struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Label    string       `json:"label"`
	Required bool         `json:"required"`
	Options  []FormOption `json:"options,omitempty"`
}

// FormOption is one choice of a radio, checkbox, select or group_chooser
// field; GroupID is the group a group_chooser option routes the chat to.
type FormOption struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	GroupID *int   `json:"group_id,omitempty"`
}

// Forms are the configured forms by group and type. A group without its
// own form of a type asks group 0's (the default) if there is one. The
// zero value and nil have no forms.
type Forms struct {
	byKey map[formKey]*Form
	byID  map[string]*Form
}

type formKey struct {
	group int
	typ   string
}

// NewForms indexes forms; an empty ID becomes "<type>_<group>". Two forms
// for one group and type, or two with one id, are an error.
func NewForms(list []Form) (*Forms, error) {
	f := &Forms{byKey: map[formKey]*Form{}, byID: map[string]*Form{}}
	for i := range list {
		fm := list[i]
		if fm.ID == "" {
			fm.ID = fmt.Sprintf("%s_%d", fm.Type, fm.Group)
		}
		k := formKey{fm.Group, fm.Type}
		if f.byKey[k] != nil {
			return nil, fmt.Errorf("two %s forms for group %d", fm.Type, fm.Group)
		}
		if f.byID[fm.ID] != nil {
			return nil, fmt.Errorf("form id %q is repeated", fm.ID)
		}
		f.byKey[k], f.byID[fm.ID] = &fm, &fm
	}
	return f, nil
}

// Get returns the form group asks of type typ.
func (f *Forms) Get(group int, typ string) (*Form, bool) {
	if f == nil {
		return nil, false
	}
	if fm := f.byKey[formKey{group, typ}]; fm != nil {
		return fm, true
	}
	fm := f.byKey[formKey{0, typ}]
	return fm, fm != nil
}

// TypeOf names the type of the configured form id ("" if none): a
// customer's filled_form carries form_id only (customer-sdk sends no
// form_type), and agents are shown which form was answered.
func (f *Forms) TypeOf(id string) string {
	if f == nil {
		return ""
	}
	if fm := f.byID[id]; fm != nil {
		return fm.Type
	}
	return ""
}
