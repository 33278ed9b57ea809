package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store/postgres"
)

// routeLock is the advisory lock every routing decision takes (one per
// schema, as the migration lock).
const routeLock = `hashtext('chatgate.route.' || current_schema())`

// presencePoll is how often a node reads the other nodes' agent sessions,
// statuses and queue even when nothing told it of a change: the fallback
// for a presence notification lost while its listener reconnected, and
// how a dead node's expired leases are noticed.
const presencePoll = time.Second

// presencePrefix begins a presence notification on the deployment's
// channel ("p:" and the node that wrote): it carries no data, only "read
// the presence tables now". Hub pointers begin with "{" or "@".
const presencePrefix = "p:"

// Coordinator is the routing.Coordinator on PostgreSQL.
//
// Agent sessions: each node writes one row per agent with sessions on it
// (agent, node, count, expires_at), renewed every renew period with a lease
// of ttl; an agent is online while any row of it is live. A node killed
// with kill -9 stops renewing: its agents go offline for the deployment
// when their rows expire (ttl, judged by the database's clock) and routing
// gives them nothing from then on.
//
// Statuses: an agent's chosen status (accepting or not) is one row per
// agent, last writer wins.
//
// Propagation: a node that wrote a status or a session change (an agent's
// first socket here, its last one gone) notifies the others on the
// broker's channel in the same round trip; each re-reads the tables at
// once (Poke, wired by the broker's OnPresence), so routing elsewhere sees
// the change within a notification and three reads, typically a few
// milliseconds. Every node also re-reads every presencePoll whatever it
// was told: that bounds a lost notification's delay to presencePoll, and
// is how an expired lease (a node killed without goodbye) is noticed:
// within ttl + presencePoll of the dead node's last renewal.
//
// Routing: every Pick and the commit that follows run holding one
// PostgreSQL advisory lock, with the open counts (and the queue, when
// draining it) read from conv_routing, a table a trigger on convs keeps.
// So two nodes never give one chat to two agents nor an agent more than
// max_chats, and queue order is the deployment's, oldest first per
// department.
type Coordinator struct {
	pool   *pgxpool.Pool
	node   string
	ttl    time.Duration
	router *routing.Router
	log    zerolog.Logger
	// poll is presencePoll (tests lengthen it to show that notifications
	// alone carry a change).
	poll time.Duration

	// routeMu lets one goroutine per node wait for the advisory lock
	// (holding a pooled connection); the others wait here without one.
	routeMu sync.Mutex

	mu      sync.Mutex
	local   map[model.AgentID]int
	dirty   bool
	pending map[model.AgentID]bool
	wake    chan struct{}
	// asked numbers the local changes (an agent's session up, a status);
	// written is the last of them the presence loop has committed, and
	// wrote is closed (and replaced) at each commit: a login or status
	// change waits for its write (awaitWrite). running is whether Run's
	// loop is there to write.
	asked, written uint64
	wrote          chan struct{}
	running        bool
	// kick is Run's: told when an agent became available.
	kick func()
}

// writeWait bounds how long a local change waits for its presence write
// (PostgreSQL unreachable: the change is still written by a later sync).
const writeWait = 2 * time.Second

// NewCoordinator returns the coordinator of node over pool's database;
// ttl <= 0 means postgres.LeaseTTL.
func NewCoordinator(pool *pgxpool.Pool, node string, ttl time.Duration, router *routing.Router, log zerolog.Logger) *Coordinator {
	if ttl <= 0 {
		ttl = postgres.LeaseTTL
	}
	return &Coordinator{pool: pool, node: node, ttl: ttl, router: router, log: log, poll: presencePoll,
		local: make(map[model.AgentID]int), pending: make(map[model.AgentID]bool), wake: make(chan struct{}, 1),
		wrote: make(chan struct{})}
}

// Route implements routing.Coordinator.
func (c *Coordinator) Route(ctx context.Context, queue bool, fn func(ctx context.Context) error) error {
	c.routeMu.Lock()
	defer c.routeMu.Unlock()
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("routing lock: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+routeLock+`)`); err != nil {
		return fmt.Errorf("routing lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+routeLock+`)`); err != nil {
			// The session still holds the lock: close it, which
			// releases it, rather than give it back to the pool.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if err := c.refresh(ctx, conn.Conn(), queue); err != nil {
		return err
	}
	return fn(ctx)
}

// refresh reads the open counts, the other nodes' agent sessions and the
// statuses (and the queue) into the router. Presence is read here too, not
// only by the presence loop: a chat started on this node right after an
// agent logged in on another must find the agent online (its login waited
// for its session row, awaitWrite), not wait for the notification; routing
// it to the queue first made the agent get incoming_chat twice, queued and
// then assigned (TestRouteSeesAgentJustConnected).
func (c *Coordinator) refresh(ctx context.Context, conn *pgx.Conn, queue bool) error {
	if err := c.readPresence(ctx, conn); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, `SELECT agent, count(*) FROM conv_routing WHERE state = 'open' AND agent <> '' GROUP BY agent`)
	if err != nil {
		return fmt.Errorf("read open counts: %w", err)
	}
	open := make(map[model.AgentID]int)
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			rows.Close()
			return fmt.Errorf("read open counts: %w", err)
		}
		open[model.AgentID(a)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read open counts: %w", err)
	}
	c.router.SetOpen(open)
	if queue {
		return c.readQueue(ctx, conn)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (c *Coordinator) readQueue(ctx context.Context, q querier) error {
	rows, err := q.Query(ctx, `SELECT id, department, created_at FROM conv_routing
WHERE state = 'queued' AND owner = '' ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("read queue: %w", err)
	}
	var entries []routing.Entry
	for rows.Next() {
		var id, dept string
		var at time.Time
		if err := rows.Scan(&id, &dept, &at); err != nil {
			rows.Close()
			return fmt.Errorf("read queue: %w", err)
		}
		entries = append(entries, routing.Entry{Conv: model.ConvID(id), Dept: model.DeptID(dept), At: at})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read queue: %w", err)
	}
	c.router.SetQueue(entries)
	return nil
}

// AgentConnected implements routing.Coordinator.
func (c *Coordinator) AgentConnected(id model.AgentID, up bool) {
	c.mu.Lock()
	if up {
		c.local[id]++
	} else if c.local[id] > 0 {
		c.local[id]--
	}
	c.dirty = true
	c.asked++
	n := c.asked
	c.mu.Unlock()
	c.poke()
	if up {
		// The agent's client is answered after this: by then every
		// node's next routing decision finds the agent online. Going
		// down is not waited for (nothing is answered).
		c.awaitWrite(n)
	}
}

// SetAccepting implements routing.Coordinator: it returns once the status
// is written (or after writeWait), so that the agent's client, answered
// next, is routed to (or not) by every node from then on.
func (c *Coordinator) SetAccepting(id model.AgentID, accepting bool) {
	c.mu.Lock()
	c.pending[id] = accepting
	c.asked++
	n := c.asked
	c.mu.Unlock()
	c.poke()
	c.awaitWrite(n)
}

// awaitWrite waits until the presence loop has committed local change n,
// at most writeWait, and not at all when the loop is not running.
func (c *Coordinator) awaitWrite(n uint64) {
	t := time.NewTimer(writeWait)
	defer t.Stop()
	for {
		c.mu.Lock()
		done, wrote := !c.running || c.written >= n, c.wrote
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-wrote:
		case <-t.C:
			return
		}
	}
}

// wroteUpTo records that local changes up to n are committed.
func (c *Coordinator) wroteUpTo(n uint64) {
	c.mu.Lock()
	if n > c.written {
		c.written = n
	}
	close(c.wrote)
	c.wrote = make(chan struct{})
	c.mu.Unlock()
}

// Poke makes the presence loop re-read the other nodes' sessions and
// statuses now (another node announced a change).
func (c *Coordinator) Poke() { c.poke() }

func (c *Coordinator) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run keeps this node's agent sessions leased and the router fed with the
// other nodes' until ctx ends; kick is told when an agent may have become
// available (the desk then drains the queue). On return this node's
// sessions are removed, so that its agents go offline at once.
func (c *Coordinator) Run(ctx context.Context, kick func()) error {
	c.mu.Lock()
	c.running = true
	c.kick = kick
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		c.wroteUpTo(0) // wake waiters: nobody writes any more
	}()
	poll := time.NewTicker(c.poll)
	defer poll.Stop()
	renewEvery := c.ttl / 3
	lastRenew := time.Time{}
	for {
		renew := time.Since(lastRenew) >= renewEvery
		if err := c.sync(ctx, renew, kick); err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn().Err(err).Msg("cluster: presence")
		} else if renew {
			lastRenew = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-poll.C:
			continue
		case <-c.wake:
			continue
		}
		break
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.pool.Exec(cctx, `DELETE FROM agent_sessions WHERE node = $1`, c.node); err != nil {
		c.log.Warn().Err(err).Msg("cluster: remove this node's agent sessions")
	}
	return nil
}

// readPresence reads the other nodes' live agent sessions and every
// agent's status into the router (statuses set here and not yet written
// are kept).
func (c *Coordinator) readPresence(ctx context.Context, q querier) error {
	became, err := c.applyPresence(ctx, q)
	if became {
		c.mu.Lock()
		kick := c.kick
		c.mu.Unlock()
		if kick != nil {
			kick() // the presence loop will not see this change again
		}
	}
	return err
}

// applyPresence is readPresence reporting whether an agent became
// available.
func (c *Coordinator) applyPresence(ctx context.Context, q querier) (bool, error) {
	remote := make(map[model.AgentID]int)
	rows, err := q.Query(ctx, `SELECT agent, sum(sessions)::int FROM agent_sessions
WHERE node <> $1 AND expires_at > now() GROUP BY agent`, c.node)
	if err != nil {
		return false, fmt.Errorf("read agent presence: %w", err)
	}
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			rows.Close()
			return false, fmt.Errorf("read agent presence: %w", err)
		}
		remote[model.AgentID(a)] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read agent presence: %w", err)
	}
	accepting := make(map[model.AgentID]bool)
	rows, err = q.Query(ctx, `SELECT agent, accepting FROM agent_status`)
	if err != nil {
		return false, fmt.Errorf("read agent statuses: %w", err)
	}
	for rows.Next() {
		var a string
		var acc bool
		if err := rows.Scan(&a, &acc); err != nil {
			rows.Close()
			return false, fmt.Errorf("read agent statuses: %w", err)
		}
		accepting[model.AgentID(a)] = acc
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read agent statuses: %w", err)
	}
	// A status set here since the write above is newer than what was
	// read: keep it.
	c.mu.Lock()
	for id := range c.pending {
		delete(accepting, id)
	}
	c.mu.Unlock()
	became := c.router.SetRemote(remote)
	became = c.router.SetStatuses(accepting) || became
	return became, nil
}

// sync writes what changed here (statuses, sessions; all sessions when
// renew) and reads everyone's.
func (c *Coordinator) sync(ctx context.Context, renew bool, kick func()) error {
	c.mu.Lock()
	asked := c.asked
	status := make(map[model.AgentID]bool, len(c.pending))
	for id, acc := range c.pending {
		status[id] = acc
	}
	var sessions map[model.AgentID]int
	changed := c.dirty // sessions came or went here since the last write
	if renew || c.dirty {
		sessions = make(map[model.AgentID]int, len(c.local))
		for id, n := range c.local {
			sessions[id] = n
			if n == 0 {
				delete(c.local, id)
			}
		}
		c.dirty = false
	}
	c.mu.Unlock()

	b := &pgx.Batch{}
	for id, acc := range status {
		b.Queue(`INSERT INTO agent_status (agent, accepting, at) VALUES ($1, $2, now())
ON CONFLICT (agent) DO UPDATE SET accepting = EXCLUDED.accepting, at = EXCLUDED.at`, string(id), acc)
	}
	for id, n := range sessions {
		if n == 0 {
			b.Queue(`DELETE FROM agent_sessions WHERE agent = $1 AND node = $2`, string(id), c.node)
			continue
		}
		b.Queue(`INSERT INTO agent_sessions (agent, node, sessions, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (agent, node) DO UPDATE SET sessions = EXCLUDED.sessions, expires_at = EXCLUDED.expires_at`,
			string(id), c.node, n, c.ttl.Seconds())
	}
	if len(status) > 0 || changed {
		// A change the other nodes should see now, not at their next
		// poll (a renewal changes nothing they see). Delivered when
		// the batch's implicit transaction commits, after the writes.
		b.Queue(`SELECT pg_notify($1 || current_schema(), $2)`, channelPrefix, presencePrefix+c.node)
	}
	if b.Len() > 0 {
		if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
			c.mu.Lock()
			c.dirty = c.dirty || sessions != nil
			c.mu.Unlock()
			return fmt.Errorf("write agent presence: %w", err)
		}
		c.mu.Lock()
		for id, acc := range status {
			if cur, ok := c.pending[id]; ok && cur == acc {
				delete(c.pending, id)
			}
		}
		c.mu.Unlock()
	}

	c.wroteUpTo(asked)
	became, err := c.applyPresence(ctx, c.pool)
	if err != nil {
		return err
	}
	// Queue positions shown to visitors count other nodes' conversations.
	if err := c.readQueue(ctx, c.pool); err != nil {
		return err
	}
	if became && kick != nil {
		kick()
	}
	return nil
}
