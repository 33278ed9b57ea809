// Package cluster holds the PostgreSQL side of running several nodes that
// needs the core's types: the hub.Broker on LISTEN/NOTIFY (broker.go) and
// the routing.Coordinator over shared presence, statuses and the queue
// (presence.go). The tables they use are created by store/postgres's
// migrations, which stay free of core packages above core/model (the house
// rule for store/); this package talks to them through the store's pool.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"chatgate/core/hub"
	"chatgate/store"
	"chatgate/store/postgres"
)

// channelPrefix names the LISTEN/NOTIFY channel the nodes of one
// deployment share; the schema's name follows, since notifications are
// database-wide and deployments (and tests) may share a database in
// separate schemas.
const channelPrefix = "chatgate."

// maxNotify is the largest payload sent as is: PostgreSQL refuses
// notifications of 8000 bytes or more. A larger pointer loses its inline
// copy (receivers read the store); one still too large (a big property
// change) is parked in cluster_notices and only its id is notified.
const maxNotify = 7900

// Broker is the hub.Broker on PostgreSQL LISTEN/NOTIFY: pointers are
// notified after commit, batched (one statement carries every pointer
// queued meanwhile, in the store's next group-commit transaction:
// postgres.Store.Notify), and received on one dedicated connection. Delivery
// order is the order notifications are committed; a node that lost its
// listening connection reconnects and asks the hub to catch up from the
// store (Resync).
type Broker struct {
	st   *postgres.Store
	pool *pgxpool.Pool
	log  zerolog.Logger
	q    chan *hub.Wire
	// channel is set by Run (it depends on the schema).
	channel string
	// self is how this node's own pointers begin (hub.Wire encodes the
	// node first): the listener drops them without decoding.
	self string
	// presence, if set, is called on another node's presence
	// notification (see Coordinator); selfPresence is this node's own.
	presence     func()
	selfPresence string
}

// NewBroker returns the broker of node over st's database.
func NewBroker(st *postgres.Store, node string, log zerolog.Logger) *Broker {
	self, _ := json.Marshal(map[string]string{"n": node})
	var pool *pgxpool.Pool
	if st != nil {
		pool = st.Pool()
	}
	return &Broker{st: st, pool: pool, log: log, q: make(chan *hub.Wire, 8192), self: strings.TrimSuffix(string(self), "}") + ",",
		selfPresence: presencePrefix + node}
}

// OnPresence sets fn to be called when another node announces a presence
// change (Coordinator.Poke); call it before Run.
func (b *Broker) OnPresence(fn func()) { b.presence = fn }

// Publish queues w for the other nodes. It waits at most a second for room
// (PostgreSQL is then slower than the commits it notifies); a pointer that
// still finds none is dropped and logged: the receivers catch the events
// up from the store on the conversation's next pointer.
func (b *Broker) Publish(w *hub.Wire) {
	select {
	case b.q <- w:
		return
	default:
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case b.q <- w:
	case <-t.C:
		b.log.Warn().Str("conv", string(w.Conv)).Msg("cluster: notice queue full, pointer dropped")
	}
}

// Run sends queued pointers and listens for the other nodes' until ctx
// ends.
func (b *Broker) Run(ctx context.Context, h hub.BrokerHandler) error {
	var schema string
	if err := b.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("cluster: schema: %w", err)
	}
	b.channel = channelPrefix + schema
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.send(ctx)
	}()
	b.listen(ctx, h)
	<-done
	return nil
}

func (b *Broker) send(ctx context.Context) {
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		var first *hub.Wire
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			if _, err := b.pool.Exec(ctx, `DELETE FROM cluster_notices WHERE at < now() - interval '10 minutes'`); err != nil && ctx.Err() == nil {
				b.log.Warn().Err(err).Msg("cluster: prune parked notices")
			}
			continue
		case first = <-b.q:
		}
		batch := []*hub.Wire{first}
	drain:
		for len(batch) < 256 {
			select {
			case w := <-b.q:
				batch = append(batch, w)
			default:
				break drain
			}
		}
		payloads := make([]string, 0, len(batch))
		for _, w := range batch {
			p, err := b.encode(ctx, w)
			if err != nil {
				b.log.Warn().Err(err).Str("conv", string(w.Conv)).Msg("cluster: pointer dropped")
				continue
			}
			payloads = append(payloads, p)
		}
		// One statement in the transaction of the store's next group
		// of commits, delivered in order at its commit. The next batch
		// waits for this one's commit: batches keep their order.
		for attempt := 0; attempt < 3; attempt++ {
			err := b.st.Notify(ctx, b.channel, payloads)
			if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				break
			}
			b.log.Warn().Err(err).Int("pointers", len(payloads)).Msg("cluster: notify failed")
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// encode fits a pointer into one notification.
func (b *Broker) encode(ctx context.Context, w *hub.Wire) (string, error) {
	p, err := hub.MarshalWire(w)
	if err != nil {
		return "", err
	}
	if len(p) <= maxNotify {
		return string(p), nil
	}
	w.Slim()
	if p, err = hub.MarshalWire(w); err != nil {
		return "", err
	}
	if len(p) <= maxNotify {
		return string(p), nil
	}
	var id int64
	if err := b.pool.QueryRow(ctx, `INSERT INTO cluster_notices (payload) VALUES ($1) RETURNING id`, p).Scan(&id); err != nil {
		return "", fmt.Errorf("park large notice: %w", err)
	}
	return "@" + strconv.FormatInt(id, 10), nil
}

// listen holds the LISTEN connection, reconnecting with backoff; after
// every reconnection the hub catches up from the store.
func (b *Broker) listen(ctx context.Context, h hub.BrokerHandler) {
	wait := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := b.pool.Acquire(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize())
			if err == nil {
				if !first {
					h.Resync(ctx)
				}
				first = false
				wait = 100 * time.Millisecond
				err = b.receive(ctx, conn.Conn(), h)
			}
			// The connection held LISTEN state: never give it back to
			// the pool.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
			conn.Release()
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn().Err(err).Dur("retry_in", wait).Msg("cluster: listener lost its connection")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (b *Broker) receive(ctx context.Context, conn *pgx.Conn, h hub.BrokerHandler) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		payload := n.Payload
		if strings.HasPrefix(payload, b.self) {
			continue // this node's own pointer, delivered here already
		}
		if strings.HasPrefix(payload, presencePrefix) {
			if b.presence != nil && payload != b.selfPresence {
				b.presence()
			}
			continue
		}
		if strings.HasPrefix(payload, "@") {
			id, err := strconv.ParseInt(payload[1:], 10, 64)
			if err != nil {
				b.log.Warn().Str("payload", payload).Msg("cluster: bad parked notice id")
				continue
			}
			if err := b.pool.QueryRow(ctx, `SELECT payload FROM cluster_notices WHERE id = $1`, id).Scan(&payload); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					b.log.Warn().Int64("id", id).Msg("cluster: parked notice gone")
					continue
				}
				return fmt.Errorf("read parked notice: %w", err)
			}
		}
		w, err := hub.UnmarshalWire([]byte(payload))
		if err != nil {
			b.log.Warn().Err(err).Msg("cluster: bad notice")
			continue
		}
		h.Receive(ctx, w)
	}
}
