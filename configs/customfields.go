package configs

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"chatgate/core/desk"
	cmail "chatgate/core/mail"
)

// CustomFieldNamespace is the property namespace that holds room-scope
// livechat custom fields on conversations (thread properties), so that
// every surface's agents see them: LiveChat agents as thread properties.
const CustomFieldNamespace = "rocketchat_custom_fields"

// MailConfig is the SMTP section as core/mail takes it.
func (c *Config) MailConfig() cmail.Config {
	s := c.SMTP
	return cmail.Config{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: s.From,
		TLS: s.TLS, Timeout: s.Timeout, MaxAttempts: s.MaxAttempts}
}

// customFieldID: Rocket.Chat custom field ids are names (letters, digits,
// "_", "-", ".").
var customFieldID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// validateCustomFields checks the livechat custom field definitions.
func validateCustomFields(fields []CustomField) []string {
	var errs []string
	seen := map[string]bool{}
	for i, f := range fields {
		at := fmt.Sprintf("rocketchat.custom_fields[%d]", i)
		if !customFieldID.MatchString(f.ID) || seen[f.ID] {
			errs = append(errs, fmt.Sprintf("%s: id %q must be 1-64 letters, digits, _ . - and unique", at, f.ID))
		}
		seen[f.ID] = true
		if f.Label == "" {
			errs = append(errs, at+": label is empty")
		}
		switch f.Scope {
		case "visitor", "room":
		default:
			errs = append(errs, at+": scope must be visitor or room")
		}
		switch f.Visibility {
		case "visible", "hidden":
		default:
			errs = append(errs, at+": visibility must be visible or hidden")
		}
		switch f.Type {
		case "input":
		case "select":
			if strings.TrimSpace(f.Options) == "" {
				errs = append(errs, at+": a select needs options")
			}
		default:
			errs = append(errs, at+": type must be input or select")
		}
		if f.Regexp != "" {
			if _, err := regexp.Compile(f.Regexp); err != nil {
				errs = append(errs, fmt.Sprintf("%s: regexp: %v", at, err))
			}
		}
	}
	return errs
}

// customFieldPropDefs declares the room-scope custom fields as thread
// properties (agents read and write them; the visitor writes them through
// livechat/custom.field and reads them back).
func customFieldPropDefs(fields []CustomField) []desk.PropDef {
	var out []desk.PropDef
	for _, f := range fields {
		if f.Scope != "room" {
			continue
		}
		out = append(out, desk.PropDef{Namespace: CustomFieldNamespace, Name: f.ID, Type: desk.PropString,
			Description: f.Label, Access: map[desk.PropLocation]desk.RoleAccess{
				desk.LocThread: {Agent: desk.Perm{Read: true, Write: true}, Customer: desk.Perm{Read: true, Write: true}}}})
	}
	return out
}

func validAddress(a string) error {
	_, err := mail.ParseAddress(a)
	return err
}
