package postgres

import (
	"context"
	"fmt"
	"strings"
)

// notifySQL sends $2's payloads on channel $1 in array order: pg_notify
// runs in row order and the notifications are delivered in that order
// when the transaction commits. notifyJoinedSQL takes them as one text
// joined by notifySep, which the gateway encodes as one copy rather than
// as an array of n elements (pgx's array encoding was 2 % of a gateway's
// CPU on the two-node bench); the JSON pointers chatgate sends never hold
// a raw control character, anything else goes as an array.
const (
	notifySQL       = `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i`
	notifyJoinedSQL = `SELECT pg_notify($1, p) FROM unnest(string_to_array($2::text, E'\x1e')) WITH ORDINALITY AS t(p, i) ORDER BY i`
	notifySep       = "\x1e"
)

// Notify sends payloads as notifications on channel, in order, in the
// transaction of the writers' next group: they ride with the commits
// queued at that moment (delivered when those commit, so still after
// every commit the payloads announce, which returned before Notify was
// called) instead of costing a transaction, a round trip and a WAL flush
// of their own (PostgreSQL gives a notifying transaction an XID, so it
// writes and flushes a commit record). With nothing else queued they are
// a transaction alone, as before.
//
// A group rolled back because one of its commits broke a rule is sent
// again without that commit, with the notifications: they are delivered
// once. When the group's outcome is unknown (the connection or COMMIT
// failed) Notify returns the error and the caller may send them again;
// the receivers tolerate a repeated notification (hub.Cluster drops
// events already delivered). Notify returns once the notifications are
// committed, so that a caller sending batches one after another keeps
// their order.
func (s *Store) Notify(ctx context.Context, channel string, payloads []string) error {
	if len(payloads) == 0 {
		return nil
	}
	if err := s.run(ctx, notifyWork(channel, payloads)); err != nil {
		return fmt.Errorf("postgres: notify: %w", err)
	}
	return nil
}

// notifyWork is the statement sending payloads on channel, riding in a
// group.
func notifyWork(channel string, payloads []string) *work {
	w := &work{rider: true}
	if joinable(payloads) {
		w.Queue(notifyJoinedSQL, channel, strings.Join(payloads, notifySep))
	} else {
		w.Queue(notifySQL, channel, payloads)
	}
	return w
}

// joinable reports whether payloads can travel joined by notifySep: none
// holds it, and none is empty (string_to_array would drop nothing, but
// an empty text gives no element at all).
func joinable(payloads []string) bool {
	for _, p := range payloads {
		if p == "" || strings.Contains(p, notifySep) {
			return false
		}
	}
	return true
}
