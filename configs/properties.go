package configs

import (
	"encoding/json"
	"fmt"
	"sort"

	"chatgate/core/desk"
)

// Property declares one property of a namespace (see "properties" in
// chatgate.example.yaml).
type Property struct {
	// Type is int, bool, string or tokenized_string.
	Type        string `yaml:"type"`
	Description string `yaml:"description"`
	// Access maps a location (chat, thread, event) to each role's access
	// there: {agent: [read, write], customer: [read]}.
	Access map[string]map[string][]string `yaml:"access"`
	// Domain, if set, lists the allowed values.
	Domain []any `yaml:"domain"`
	// Range, if set, bounds an int property (inclusive).
	Range *struct {
		From int64 `yaml:"from"`
		To   int64 `yaml:"to"`
	} `yaml:"range"`
}

// PropertyDefs converts the properties section to the core's declarations,
// sorted by namespace and name, checking each of them.
func (c *Config) PropertyDefs() ([]desk.PropDef, error) {
	var out []desk.PropDef
	for ns, m := range c.Properties {
		for name, p := range m {
			d := desk.PropDef{Namespace: ns, Name: name, Type: desk.PropType(p.Type), Description: p.Description,
				Access: make(map[desk.PropLocation]desk.RoleAccess, len(p.Access))}
			for loc, roles := range p.Access {
				var ra desk.RoleAccess
				for role, list := range roles {
					perm, err := desk.ParsePerm(list)
					if err != nil {
						return nil, fmt.Errorf("properties.%s.%s.access.%s.%s: %w", ns, name, loc, role, err)
					}
					switch role {
					case "agent":
						ra.Agent = perm
					case "customer":
						ra.Customer = perm
					default:
						return nil, fmt.Errorf("properties.%s.%s.access.%s: unknown role %q (agent, customer)", ns, name, loc, role)
					}
				}
				d.Access[desk.PropLocation(loc)] = ra
			}
			for _, v := range p.Domain {
				b, err := json.Marshal(v)
				if err != nil {
					return nil, fmt.Errorf("properties.%s.%s.domain: %w", ns, name, err)
				}
				d.Domain = append(d.Domain, b)
			}
			if p.Range != nil {
				d.Range = &desk.PropRange{From: p.Range.From, To: p.Range.To}
			}
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("properties.%s.%s: %w", ns, name, err)
			}
			out = append(out, d)
		}
	}
	if _, taken := c.Properties[CustomFieldNamespace]; taken && len(customFieldPropDefs(c.RocketChat.CustomFields)) > 0 {
		return nil, fmt.Errorf("properties.%s: the namespace holds rocketchat.custom_fields of scope room", CustomFieldNamespace)
	}
	out = append(out, customFieldPropDefs(c.RocketChat.CustomFields)...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
