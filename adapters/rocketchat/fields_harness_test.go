package rocketchat

import (
	"testing"

	"chatgate/core/desk"
	"chatgate/store"
)

// testFieldNS is the room-scope namespace of the test surfaces.
const testFieldNS = "rocketchat_custom_fields"

// testCustomFields are the custom field definitions of the test surfaces:
// the keys the tests set, one with a regexp, one select, one room-scope.
var testCustomFields = []CustomField{
	{ID: "customerId", Label: "Customer ID", Scope: "visitor", Visibility: "visible", Type: "input", Regexp: `^[A-Z]-[0-9]+$`, Public: true, Required: true},
	{ID: "plan", Label: "Plan", Scope: "visitor", Visibility: "visible", Type: "select", Options: "gold, silver", Public: true},
	{ID: "tier", Label: "Tier", Scope: "visitor", Visibility: "hidden", Type: "input"},
	{ID: "k", Label: "K", Scope: "visitor", Visibility: "visible", Type: "input"},
	{ID: "size", Label: "Size", Scope: "visitor", Visibility: "visible", Type: "input"},
	{ID: "orderRef", Label: "Order", Scope: "room", Visibility: "visible", Type: "input", Regexp: `^ORD-[0-9]+$`},
}

// testProperties declares the room-scope fields as thread properties, as
// configs.PropertyDefs does.
func testProperties(t testing.TB, st store.Store) *desk.Properties {
	t.Helper()
	p, err := desk.NewProperties(st, []desk.PropDef{{Namespace: testFieldNS, Name: "orderRef", Type: desk.PropString,
		Access: map[desk.PropLocation]desk.RoleAccess{desk.LocThread: {Agent: desk.Perm{Read: true, Write: true}, Customer: desk.Perm{Read: true, Write: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
