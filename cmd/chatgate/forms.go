package main

import (
	"chatgate/adapters/livechat/wire"
	"chatgate/configs"
	"chatgate/core/model"
)

// liveChatForms turns livechat.forms into the surfaces' index, departments
// named by their LiveChat group ids.
func liveChatForms(list []configs.Form) (*wire.Forms, error) {
	forms := make([]wire.Form, 0, len(list))
	for _, f := range list {
		wf := wire.Form{ID: f.ID, Type: f.Type, Group: wire.GroupID(model.DeptID(f.Department)),
			Fields: make([]wire.FormFieldDef, 0, len(f.Fields))}
		for _, fl := range f.Fields {
			d := wire.FormFieldDef{ID: fl.ID, Type: fl.Type, Label: fl.Label, Required: fl.Required}
			for _, o := range fl.Options {
				opt := wire.FormOption{ID: o.ID, Label: o.Label}
				if o.Department != "" {
					g := wire.GroupID(model.DeptID(o.Department))
					opt.GroupID = &g
				}
				d.Options = append(d.Options, opt)
			}
			wf.Fields = append(wf.Fields, d)
		}
		forms = append(forms, wf)
	}
	return wire.NewForms(forms)
}
