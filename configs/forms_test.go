package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForms: livechat.forms loads, and each mistake is named.
func TestForms(t *testing.T) {
	head := "departments:\n  - {id: \"1\", name: Sales}\nlivechat:\n  forms:\n"
	field := "      - {id: a, type: name, label: Name}\n"
	for _, tc := range []struct {
		name, forms, want string
	}{
		{"ok", "    - type: prechat\n      fields:\n" + field +
			"      - {id: b, type: group_chooser, label: Team, options: [{id: x, label: S, department: \"1\"}]}\n" +
			"    - {type: prechat, department: \"1\", fields: [{id: a, type: email, label: E}]}\n", ""},
		{"bad type", "    - type: survey\n      fields:\n" + field, "type must be prechat"},
		{"unknown department", "    - type: prechat\n      department: nope\n      fields:\n" + field, "unknown department"},
		{"twice", "    - type: prechat\n      fields:\n" + field + "    - type: prechat\n      fields:\n" + field, "a second prechat form"},
		{"no fields", "    - type: postchat\n      fields: []\n", "1 to 100 fields"},
		{"field type", "    - type: prechat\n      fields:\n      - {id: a, type: password, label: P}\n", "is not one of"},
		{"options missing", "    - type: prechat\n      fields:\n      - {id: a, type: radio, label: R}\n", "needs options"},
		{"options on text", "    - type: prechat\n      fields:\n      - {id: a, type: name, label: N, options: [{id: x, label: y}]}\n", "only radio"},
		{"repeated field id", "    - type: prechat\n      fields:\n" + field + field, "empty or repeated"},
		{"unknown field", "    - type: prechat\n      colour: red\n      fields:\n" + field, "colour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(head+tc.forms), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, env(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "" && len(c.LiveChat.Forms) != 2:
				t.Fatalf("forms = %+v", c.LiveChat.Forms)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
