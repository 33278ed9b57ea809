package main

import (
	"sync"
	"testing"

	"chatgate/store/postgres"
	"chatgate/store/postgres/pgtest"
)

// TestDemoSecretNodesAgree: nodes starting at once on one empty database
// end with the same demo agent secret, whoever generated it.
func TestDemoSecretNodesAgree(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	const nodes = 6
	got := make([]string, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		st, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		wg.Go(func() {
			v, err := demoSecret(t.Context(), st, demoAgentTokenKey)
			if err != nil {
				t.Errorf("node %d: %v", i, err)
			}
			got[i] = string(v)
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] == "" || got[i] != got[0] {
			t.Fatalf("nodes got different secrets: %q", got)
		}
	}
}
