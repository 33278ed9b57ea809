package webhooks

import (
	"encoding/json"
	"testing"

	"chatgate/core/desk"
)

func (g *gateway) withProps() *gateway {
	g.svc.cfg.Properties = g.d.Properties()
	return g
}

func TestPropertyConfigurationAPI(t *testing.T) {
	g := newGateway(t, gwOptions{}).withProps()
	valid := func() map[string]any {
		return map[string]any{"name": "score", "owner_client_id": "app1", "type": "int",
			"access": map[string]any{"chat": map[string]any{"customer": []string{"read", "write"}, "agent": []string{"read"}}},
			"range":  map[string]any{"from": 0, "to": 5}}
	}
	with := func(k string, v any) map[string]any {
		b := valid()
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name   string
		body   any
		status int
		typ    string
	}{
		{"name missing", with("name", nil), 400, "validation"},
		{"owner missing", with("owner_client_id", nil), 400, "validation"},
		{"type missing", with("type", nil), 400, "validation"},
		{"type unknown", with("type", "float"), 400, "validation"},
		{"no access", with("access", nil), 400, "validation"},
		{"unknown location", with("access", map[string]any{"visit": map[string]any{"agent": []string{"read"}}}), 400, "validation"},
		{"unknown access", with("access", map[string]any{"chat": map[string]any{"agent": []string{"delete"}}}), 400, "validation"},
		{"range on a string", with("type", "string"), 400, "validation"},
		{"domain of wrong type", with("domain", []any{"a"}), 400, "validation"},
		{"valid", valid(), 200, ""},
		{"again", valid(), 422, "already_exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, b := g.call("3.6", "register_property", annToken, tc.body)
			if tc.typ == "" {
				if st != tc.status {
					t.Fatalf("got %d %s", st, b)
				}
				return
			}
			wantError(t, st, b, tc.status, tc.typ, "")
		})
	}
	if st, b := g.call("3.6", "register_property", "", valid()); st != 401 {
		t.Fatalf("without a token: %d %s", st, b)
	}
	st, b := g.call("3.6", "list_properties", annToken, map[string]any{"owner_client_id": "app1"})
	want := `{"score":{"type":"int","access":{"chat":{"agent":["read"],"customer":["read","write"]}},"range":{"from":0,"to":5}}}`
	if st != 200 || string(b) != want {
		t.Fatalf("list_properties: %d %s, want %s", st, b, want)
	}

	// Registered properties survive a restart and are enforced.
	g.close()
	g2 := newGateway(t, gwOptions{path: g.path}).withProps()
	if st, b := g2.call("3.6", "list_properties", annToken, map[string]any{"owner_client_id": "app1"}); st != 200 || string(b) != want {
		t.Fatalf("list_properties after restart: %d %s", st, b)
	}
	v := g2.visitor("Val")
	g2.start(v, "hi")
	err := g2.d.UpdateProperties(t.Context(), desk.PropTarget{Location: desk.LocChat, Visitor: v.ID}, vAuthor(v),
		map[string]map[string]json.RawMessage{"app1": {"score": json.RawMessage(`6`)}}, "")
	if err == nil {
		t.Fatal("out-of-range write accepted after restart")
	}
	if st, b := g2.call("3.6", "unregister_property", annToken, map[string]any{"owner_client_id": "app1", "name": "score"}); st != 200 {
		t.Fatalf("unregister_property: %d %s", st, b)
	}
	st, b = g2.call("3.6", "unregister_property", annToken, map[string]any{"owner_client_id": "app1", "name": "score"})
	wantError(t, st, b, 404, "not_found", "")
	if st, b := g2.call("3.6", "list_properties", annToken, map[string]any{"owner_client_id": "app1"}); st != 200 || string(b) != `{}` {
		t.Fatalf("list_properties after unregister: %d %s", st, b)
	}
}
