package main

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/visitorv2"
	pgcluster "chatgate/core/cluster"
	"chatgate/core/hub"
	"chatgate/core/ratelimit"
	"chatgate/core/routing"
	"chatgate/store/postgres"
)

// cluster is what a node on PostgreSQL runs besides one on bbolt: the
// broker that makes the bus deployment-wide, the routing coordinator
// (agent presence leases, the routing lock), and leases for the work one
// node at a time does (v2 idle sweep, relay connectors). nil on bbolt.
type cluster struct {
	hub    *hub.Cluster
	coord  *pgcluster.Coordinator
	leases *postgres.Leases
	polls  *postgres.Polls
	pool   *pgxpool.Pool
	log    zerolog.Logger
	// throttles are the limits made deployment-wide (share).
	throttles []*pgcluster.Throttle
}

// share makes limit k count across the deployment (the failed-login
// lockout: per node, N nodes would give a guesser N times the budget).
// Nothing on one node.
func (c *cluster) share(k *ratelimit.Keyed) {
	if c == nil || k == nil || !k.Rule().Enabled() {
		return
	}
	t := pgcluster.NewThrottle(c.pool, k.Name(), k.Rule(), c.log)
	k.Share(t)
	c.throttles = append(c.throttles, t)
}

// newCluster returns the node's cluster parts when the store is
// PostgreSQL, nil otherwise. leaseTTL <= 0 means postgres.LeaseTTL.
func newCluster(opened *openedStore, node string, leaseTTL time.Duration, router *routing.Router, bus *hub.Bus, log zerolog.Logger) *cluster {
	pg, ok := opened.Store.(*postgres.Store)
	if !ok {
		return nil
	}
	pool := pg.Pool()
	clog := log.With().Str("part", "cluster").Logger()
	leases := postgres.NewLeases(pool, node, leaseTTL, clog)
	broker := pgcluster.NewBroker(pg, node, clog)
	coord := pgcluster.NewCoordinator(pool, node, leaseTTL, router, clog)
	broker.OnPresence(coord.Poke) // presence changes cross at once, not at the next poll
	return &cluster{
		hub: hub.NewCluster(bus, broker, pg, node, func(err error) {
			clog.Warn().Err(err).Msg("cluster: catch up")
		}),
		coord:  coord,
		leases: leases,
		polls:  postgres.NewPolls(pool, leases),
		pool:   pool,
		log:    clog,
	}
}

// coordinator is the desk's routing coordinator (nil on one node).
func (c *cluster) coordinator() routing.Coordinator {
	if c == nil {
		return nil
	}
	return c.coord
}

// v2Polls is the v2 surface's shared poll times (nil on one node).
func (c *cluster) v2Polls() visitorv2.Polls {
	if c == nil {
		return nil
	}
	return c.polls
}

// exclusive is the relay service's lease holder (nil on one node).
func (c *cluster) exclusive() func(ctx context.Context, name string, fn func(ctx context.Context)) {
	if c == nil {
		return nil
	}
	return c.leases.Hold
}

// run runs the broker and the presence loop until ctx ends; kick is the
// desk's (an agent became available). reload, if set, re-reads what this
// node keeps in memory from the store's meta (the properties and webhooks
// registered through any node's Configuration API) every second.
func (c *cluster) run(ctx context.Context, wg *sync.WaitGroup, kick func(), reload func(context.Context) error, log zerolog.Logger) {
	if c == nil {
		return
	}
	wg.Go(func() { _ = c.hub.Run(ctx) })
	wg.Go(func() { _ = c.coord.Run(ctx, kick) })
	for _, t := range c.throttles {
		wg.Go(func() { t.Run(ctx) })
	}
	if reload != nil {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := reload(ctx); err != nil && ctx.Err() == nil {
						log.Warn().Err(err).Msg("cluster: reload shared settings")
					}
				}
			}
		})
	}
}
