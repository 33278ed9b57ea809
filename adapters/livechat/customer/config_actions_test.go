package customer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

func (h *harness) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func groupOf(t *testing.T, h *harness, dept model.DeptID) int {
	t.Helper()
	if _, ok := h.d.Department(dept); !ok {
		t.Fatalf("no department %s", dept)
	}
	return wire.GroupID(dept)
}

// The customer configuration actions of §2.5 answered from chatgate's
// departments (groups) and agents: only carol (sales) is online, so group
// 0 and sales are online and support offline.
func TestCustomerConfigurationActions(t *testing.T) {
	h := newHarness(t, nil)
	h.d.AgentConnected(carol, true)
	sales, support := groupOf(t, h, "sales"), groupOf(t, h, "support")
	c, _, tok := h.customer(t)
	web := func(action, body string) (int, []byte) {
		st, b, _ := h.post(t, "/v3.5/customer/action/"+action+"?organization_id=org-1", tok, body, nil)
		return st, b
	}

	ok := []struct{ name, action, body, want string }{
		{"all group statuses", "list_group_statuses", `{"all":true}`,
			fmt.Sprintf(`{"groups_status":{"0":"online","%d":"online","%d":"offline"}}`, sales, support)},
		{"some group statuses", "list_group_statuses", fmt.Sprintf(`{"group_ids":[%d]}`, support),
			fmt.Sprintf(`{"groups_status":{"%d":"offline"}}`, support)},
		{"form", "get_form", fmt.Sprintf(`{"group_id":%d,"type":"prechat"}`, sales), `{"enabled":false}`},
		{"predicted agent", "get_predicted_agent", `{}`,
			`{"agent":{"id":"carol@example.com","name":"Carol","avatar":"","is_bot":false,"job_title":"","type":"agent"},"queue":false}`},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Call(tc.action, json.RawMessage(tc.body))
			if !r.Success || string(r.Payload) != tc.want {
				t.Errorf("rtm: %s, want %s", r.Payload, tc.want)
			}
			if st, b := web(tc.action, tc.body); st != 200 || string(b) != tc.want {
				t.Errorf("web: %d %s, want %s", st, b, tc.want)
			}
		})
	}

	refused := []struct{ name, action, body, want string }{
		{"statuses without a choice", "list_group_statuses", `{}`, "validation"},
		{"statuses with both", "list_group_statuses", `{"all":true,"group_ids":[0]}`, "validation"},
		{"statuses wrong type", "list_group_statuses", `{"group_ids":"0"}`, "validation"},
		{"statuses unknown group", "list_group_statuses", `{"group_ids":[999999]}`, "group_not_found"},
		{"form without type", "get_form", `{"group_id":0}`, "validation"},
		{"form bad type", "get_form", `{"group_id":0,"type":"survey"}`, "validation"},
		{"form without group", "get_form", `{"type":"ticket"}`, "validation"},
		{"form unknown group", "get_form", `{"group_id":999999,"type":"ticket"}`, "group_not_found"},
		{"predicted agent of an offline group", "get_predicted_agent", fmt.Sprintf(`{"group_id":%d}`, support), "group_offline"},
		{"goals without page_url", "check_goals", `{"group_id":0}`, "validation"},
		{"accept greeting without unique_id", "accept_greeting", `{"greeting_id":1}`, "validation"},
		{"accept greeting id as string", "accept_greeting", `{"greeting_id":"1","unique_id":"u"}`, "validation"},
		{"accept a greeting never shown", "accept_greeting", `{"greeting_id":342543723,"unique_id":"e35a4fb4"}`, "greeting_not_found"},
		{"cancel greeting without unique_id", "cancel_greeting", `{}`, "validation"},
		{"cancel a greeting never shown", "cancel_greeting", `{"unique_id":"e35a4fb4"}`, "greeting_not_found"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if tc.action != "check_goals" {
				if r := c.Call(tc.action, json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
					t.Errorf("rtm: %v %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
				}
			}
			if st, b := web(tc.action, tc.body); st < 400 || !containsType(b, tc.want) {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}

	t.Run("check_goals is Web API only", func(t *testing.T) {
		if st, b := web("check_goals", `{"page_url":"https://shop.example/cart","group_id":0,"session_fields":[{"a":"b"}]}`); st != 200 || string(b) != "{}" {
			t.Errorf("web: %d %s", st, b)
		}
		if r := c.Call("check_goals", map[string]any{"page_url": "https://shop.example/"}); r.Success || r.ErrType() != "validation" {
			t.Errorf("rtm: %s", r.Payload)
		}
	})
}

// The GET actions (§2.11) answer from the query string without a token.
func TestCustomerGetActions(t *testing.T) {
	h := newHarness(t, nil)
	h.d.AgentConnected(carol, true)
	sales, support := groupOf(t, h, "sales"), groupOf(t, h, "support")

	st, b := h.get(t, fmt.Sprintf("/v3.5/customer/action/get_dynamic_configuration?organization_id=org-1&group_id=%d&url=https://shop.example/", sales))
	var dc DynamicConfiguration
	mustUnmarshal(t, b, &dc)
	if st != 200 || dc.GroupID != sales || dc.OrganizationID != "org-1" || !dc.DomainAllowed || dc.ClientLimitExceeded ||
		!slices.Equal(dc.OnlineGroupIDs, []int{0, sales}) || dc.Language != "en" || dc.ConfigVersion == "" {
		t.Fatalf("get_dynamic_configuration: %d %s", st, b)
	}
	st, b = h.get(t, fmt.Sprintf("/v3.5/customer/action/get_configuration?license_id=1520&group_id=%d", support))
	var cfg Configuration
	mustUnmarshal(t, b, &cfg)
	if st != 200 || cfg.Group.ID != support || cfg.Group.Name != "Support" || cfg.Buttons == nil {
		t.Fatalf("get_configuration: %d %s", st, b)
	}
	st, b = h.get(t, "/v3.5/customer/action/get_localization?organization_id=org-1&language=en")
	var loc map[string]string
	mustUnmarshal(t, b, &loc)
	if st != 200 || loc["Agents_currently_not_available"] == "" {
		t.Fatalf("get_localization: %d %s", st, b)
	}
	for _, p := range []string{"list_license_properties?organization_id=org-1", "list_group_properties?organization_id=org-1&id=0"} {
		if st, b := h.get(t, "/v3.5/customer/action/"+p); st != 200 || string(b) != "{}" {
			t.Fatalf("%s: %d %s", p, st, b)
		}
	}

	refused := []struct {
		name, path string
		status     int
		want       string
	}{
		{"no organization", "get_dynamic_configuration", 400, "validation"},
		{"wrong organization", "get_dynamic_configuration?organization_id=other", 404, "license_not_found"},
		{"group not a number", "get_dynamic_configuration?organization_id=org-1&group_id=x", 400, "validation"},
		{"unknown group", "get_configuration?organization_id=org-1&group_id=999999", 404, "group_not_found"},
		{"group properties without id", "list_group_properties?organization_id=org-1", 400, "validation"},
		{"a POST action", "get_chat?organization_id=org-1", 400, "validation"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if st, b := h.get(t, "/v3.5/customer/action/"+tc.path); st != tc.status || !containsType(b, tc.want) {
				t.Errorf("%d %s, want %d %s", st, b, tc.status, tc.want)
			}
		})
	}
}
