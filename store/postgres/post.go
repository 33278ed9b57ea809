package postgres

import (
	"strconv"
	"strings"

	"chatgate/core/model"
)

// A post's statement comes in shapes (postSQL): no, one or several
// events, idempotency keys and visitor checks. A message is nearly always
// one event, no key or one, one visitor check or none; as arrays (the one
// general statement of round 4 was) every post had the gateway encode seven
// arrays, most of them empty, and the server plan and start two unnest
// scans and a check for nothing. Each shape is its own prepared statement
// (at most 27 per connection) and keeps the general statement's rules:
// events and keys are inserted only through u's row, so a stale writer
// writes nothing and is told ErrStale; a key already present fails with
// unique_violation; every named visitor must still be at its revision.
const (
	partNone = iota
	partOne
	partMany
)

// postSQLs[events][keys][checks] is built once (init).
var postSQLs [3][3][3]string

func init() {
	for e := range 3 {
		for k := range 3 {
			for c := range 3 {
				postSQLs[e][k][c] = buildPostSQL(e, k, c)
			}
		}
	}
}

// partOf is the shape of n items.
func partOf(n int) int { return min(n, partMany) }

// postSQL returns the statement of a post with that many events, keys and
// visitor checks. Parameters: $1 id, $2 visitor, $3 data, $4 expected
// rev, $5 routing (routingKey, or NULL); then the events' (seq, data), the keys' (system, key, conv, seq)
// and the checks' (visitor id, rev), each group as scalars (one) or
// arrays (several), in that order.
func postSQL(events, keys, checks int) string {
	return postSQLs[partOf(events)][partOf(keys)][partOf(checks)]
}

func buildPostSQL(events, keys, checks int) string {
	n := 5
	next := func() string { n++; return "$" + strconv.Itoa(n) }
	var b strings.Builder
	// routing_rev is the revision written (rev on the right is the old
	// one): the routing trigger trusts routing only at that revision.
	b.WriteString(`WITH u AS (UPDATE convs SET visitor = $2, rev = rev + 1, data = $3, routing = $5, routing_rev = rev + 1
	WHERE id = $1 AND rev = $4 RETURNING rev)`)
	switch events {
	case partOne:
		seq, data := next(), next()
		b.WriteString(`,
e AS (INSERT INTO events (conv, seq, data) SELECT $1, ` + seq + `::bigint, ` + data + `::bytea FROM u)`)
	case partMany:
		seq, data := next(), next()
		b.WriteString(`,
e AS (INSERT INTO events (conv, seq, data) SELECT $1, t.seq, t.data FROM u, unnest(` + seq + `::bigint[], ` + data + `::bytea[]) AS t(seq, data))`)
	}
	switch keys {
	case partOne:
		sys, k, c, q := next(), next(), next(), next()
		b.WriteString(`,
i AS (INSERT INTO idems (system, key, conv, seq) SELECT ` + sys + `::text, ` + k + `::text, ` + c + `::text, ` + q + `::bigint FROM u)`)
	case partMany:
		sys, k, c, q := next(), next(), next(), next()
		b.WriteString(`,
i AS (INSERT INTO idems (system, key, conv, seq) SELECT t.sys, t.k, t.c, t.q FROM u, unnest(` + sys + `::text[], ` + k + `::text[], ` + c + `::text[], ` + q + `::bigint[]) AS t(sys, k, c, q))`)
	}
	b.WriteString(`
SELECT (SELECT rev FROM u) FROM (SELECT chatgate_check(EXISTS (SELECT 1 FROM u), 'CGST1',
	'conversation ' || $1 || ' is no longer at revision ' || $4::bigint)`)
	const stale = `, 'CGST1',
	'a visitor the command read is no longer at its revision')`
	switch checks {
	case partOne:
		id, rev := next(), next()
		b.WriteString(`,
	chatgate_check(EXISTS (SELECT 1 FROM visitors v WHERE v.id = ` + id + `::text AND v.rev = ` + rev + `::bigint)` + stale)
	case partMany:
		ids, revs := next(), next()
		b.WriteString(`,
	chatgate_check(NOT EXISTS (SELECT 1 FROM unnest(` + ids + `::text[], ` + revs + `::bigint[]) AS x(id, rev)
		WHERE NOT EXISTS (SELECT 1 FROM visitors v WHERE v.id = x.id AND v.rev = x.rev))` + stale)
	}
	b.WriteString(`) AS c`)
	return b.String()
}

// routingKey is what conv_routing mirrors of c and its trigger compares
// (state, agent, department), unambiguous (each part length-prefixed).
// ok is false when it cannot be sent as text (invalid UTF-8 or a NUL in an
// id): the statement then writes NULL and the trigger checks the JSON.
func routingKey(c *model.Conversation) (key string, ok bool) {
	var b strings.Builder
	for _, p := range [3]string{string(c.State), string(c.Agent), string(c.Department)} {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	key = b.String()
	return key, textOK(key)
}
