package configs

import (
	"fmt"
	"slices"
)

// Form is a LiveChat pre-chat, post-chat or ticket form asked by one group
// (livechat.forms; see chatgate.example.yaml).
type Form struct {
	// Type is prechat, postchat or ticket.
	Type string `yaml:"type"`
	// Department is the group asking it (a department id); empty is group
	// 0, whose forms every group without its own of that type asks.
	Department string `yaml:"department"`
	// ID is the form_id; default "<type>_<group id>".
	ID     string      `yaml:"id"`
	Fields []FormField `yaml:"fields"`
}

// FormField is one question of a form.
type FormField struct {
	ID       string       `yaml:"id"`
	Type     string       `yaml:"type"`
	Label    string       `yaml:"label"`
	Required bool         `yaml:"required"`
	Options  []FormOption `yaml:"options"`
}

// FormOption is one choice of a radio, checkbox, select or group_chooser
// field; Department, for group_chooser, is where the chat is routed.
type FormOption struct {
	ID         string `yaml:"id"`
	Label      string `yaml:"label"`
	Department string `yaml:"department"`
}

var (
	formTypes      = []string{"prechat", "postchat", "ticket"}
	formFieldTypes = []string{"header", "name", "email", "question", "textarea", "radio", "checkbox", "select",
		"group_chooser", "rating"}
	choiceFields = []string{"radio", "checkbox", "select", "group_chooser"}
)

// maxFormFields bounds a configured form as the API bounds a filled one.
const maxFormFields = 100

func validateForms(forms []Form, depts map[string]bool) []string {
	var errs []string
	seen := map[[2]string]bool{}
	ids := map[string]bool{}
	for i, f := range forms {
		at := fmt.Sprintf("livechat.forms[%d]", i)
		if !slices.Contains(formTypes, f.Type) {
			errs = append(errs, at+": type must be prechat, postchat or ticket")
		}
		if f.Department != "" && !depts[f.Department] {
			errs = append(errs, fmt.Sprintf("%s: unknown department %q", at, f.Department))
		}
		if k := [2]string{f.Department, f.Type}; seen[k] {
			errs = append(errs, fmt.Sprintf("%s: a second %s form for department %q", at, f.Type, f.Department))
		} else {
			seen[k] = true
		}
		if f.ID != "" {
			if ids[f.ID] {
				errs = append(errs, fmt.Sprintf("%s: id %q repeated", at, f.ID))
			}
			ids[f.ID] = true
		}
		if len(f.Fields) == 0 || len(f.Fields) > maxFormFields {
			errs = append(errs, fmt.Sprintf("%s: 1 to %d fields", at, maxFormFields))
		}
		fids := map[string]bool{}
		for j, fl := range f.Fields {
			fat := fmt.Sprintf("%s.fields[%d]", at, j)
			if fl.ID == "" || fids[fl.ID] {
				errs = append(errs, fmt.Sprintf("%s: id %q is empty or repeated", fat, fl.ID))
			}
			fids[fl.ID] = true
			if !slices.Contains(formFieldTypes, fl.Type) {
				errs = append(errs, fmt.Sprintf("%s: type %q is not one of %v", fat, fl.Type, formFieldTypes))
			}
			if fl.Label == "" {
				errs = append(errs, fat+": label is required")
			}
			choice := slices.Contains(choiceFields, fl.Type)
			if choice && len(fl.Options) == 0 {
				errs = append(errs, fat+": a "+fl.Type+" field needs options")
			}
			if !choice && len(fl.Options) > 0 {
				errs = append(errs, fat+": only radio, checkbox, select and group_chooser fields have options")
			}
			for k, o := range fl.Options {
				if o.ID == "" || o.Label == "" {
					errs = append(errs, fmt.Sprintf("%s.options[%d]: id and label are required", fat, k))
				}
				if o.Department != "" && (fl.Type != "group_chooser" || !depts[o.Department]) {
					errs = append(errs, fmt.Sprintf("%s.options[%d]: department %q is for group_chooser options and must exist", fat, k, o.Department))
				}
			}
		}
	}
	return errs
}
