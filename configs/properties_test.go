package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chatgate/core/desk"
)

// example is the commented example of chatgate.example.yaml, uncommented.
const exampleProps = `
properties:
  rating:
    score:
      type: int
      description: Chat rating given by the customer
      access:
        chat:
          customer: [read, write]
          agent: [read]
      range: {from: 0, to: 5}
    comment:
      type: string
      access:
        chat:
          customer: [read, write]
          agent: [read]
`

func TestPropertiesSection(t *testing.T) {
	load := func(t *testing.T, body string) (*Config, error) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, env(nil))
	}
	if !strings.Contains(string(Example), "#  rating:\n#    score:") {
		t.Fatal("the example file lost its properties example")
	}
	c, err := load(t, exampleProps)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := c.PropertyDefs()
	if err != nil || len(defs) != 2 {
		t.Fatalf("PropertyDefs = %+v, %v", defs, err)
	}
	score := defs[1]
	if score.Namespace != "rating" || score.Name != "score" || score.Type != desk.PropInt ||
		score.Range == nil || score.Range.To != 5 ||
		score.Access[desk.LocChat] != (desk.RoleAccess{Customer: desk.Perm{Read: true, Write: true}, Agent: desk.Perm{Read: true}}) {
		t.Fatalf("score = %+v", score)
	}
	bad := []struct{ name, body, want string }{
		{"unknown type", "properties: {a: {b: {type: float, access: {chat: {agent: [read]}}}}}", "unknown type"},
		{"unknown location", "properties: {a: {b: {type: int, access: {visit: {agent: [read]}}}}}", "unknown location"},
		{"unknown role", "properties: {a: {b: {type: int, access: {chat: {bot: [read]}}}}}", "unknown role"},
		{"unknown access", "properties: {a: {b: {type: int, access: {chat: {agent: [delete]}}}}}", "unknown access"},
		{"no access", "properties: {a: {b: {type: int}}}", "no location"},
		{"range on a bool", "properties: {a: {b: {type: bool, access: {chat: {agent: [read]}}, range: {from: 0, to: 1}}}}", "range needs type int"},
		{"domain of wrong type", "properties: {a: {b: {type: int, access: {chat: {agent: [read]}}, domain: [x]}}}", "in domain"},
		{"unknown field", "properties: {a: {b: {type: int, acess: {}}}}", "acess"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := load(t, tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
