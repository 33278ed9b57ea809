package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
)

// forgetOp deletes idle anonymous visitors (see ForgetIdleVisitors). Its
// candidates were chosen in a read transaction; apply checks each again
// inside the write transaction, so that a visitor written or given a
// conversation in between is kept.
type forgetOp struct {
	cands []forgetCand
	// Set by apply: what was deleted.
	gone     []model.VisitorID
	mapsGone []string // keys of bMaps deleted, for the mapping cache
}

type forgetCand struct {
	id  []byte
	rev uint64
}

// ForgetIdleVisitors implements store.Store. Choosing candidates reads
// every visitor in pages outside the writer (a visitor with a
// conversation costs one cursor seek, and is not decoded); deleting them
// scans the mappings twice inside one write transaction, which holds
// other commits back for that long (BenchmarkForgetIdleVisitors: 0.10 s
// for 200,000 mappings).
func (s *Store) ForgetIdleVisitors(ctx context.Context, cutoff time.Time, limit int) ([]model.VisitorID, error) {
	var cands []forgetCand
	var after []byte
	for {
		n := 0
		err := s.db.View(func(tx *bbolt.Tx) error {
			vc := tx.Bucket(bVConvs).Cursor()
			c := tx.Bucket(bVisitors).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && n < scanPage*16; k, v = c.Next() {
				n++
				after = append(after[:0], k...)
				if hasConvs(vc, k) {
					continue
				}
				rec, err := decodeVisitor(tx, k, v)
				if err != nil {
					return fmt.Errorf("visitor %q: %w", k, err)
				}
				if rec.LastActive().Before(cutoff) {
					cands = append(cands, forgetCand{id: bytes.Clone(k), rev: rec.Rev})
				}
				if limit > 0 && len(cands) >= limit {
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bolt: forget visitors: %w", err)
		}
		if (limit > 0 && len(cands) >= limit) || n < scanPage*16 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	op := &forgetOp{cands: cands}
	if err := s.submit(ctx, ops{forget: op}); err != nil {
		return nil, err
	}
	return op.gone, nil
}

// hasConvs reports whether visitor id has a conversation (a key
// id ‖ 0 ‖ … in visitor_convs).
func hasConvs(c *bbolt.Cursor, id []byte) bool {
	prefix := join(id)
	k, _ := c.Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// mapKeyParts cuts a maps key system ‖ 0 ‖ tenant ‖ 0 ‖ kind ‖ 0 ‖
// foreign ‖ 0 into its four parts (slices of k, no copy).
func mapKeyParts(k []byte) ([4][]byte, bool) {
	var p [4][]byte
	rest := k
	for i := range p {
		j := bytes.IndexByte(rest, 0)
		if j < 0 || (i == 3 && j != len(rest)-1) {
			return p, false
		}
		p[i], rest = rest[:j], rest[j+1:]
	}
	return p, true
}

func (f *forgetOp) apply(tx *bbolt.Tx) (int, error) {
	f.gone, f.mapsGone = f.gone[:0], f.mapsGone[:0]
	visitors := tx.Bucket(bVisitors)
	vc := tx.Bucket(bVConvs).Cursor()
	ids := make(map[string]struct{}, len(f.cands))
	for _, c := range f.cands {
		raw := visitors.Get(c.id)
		if raw == nil || hasConvs(vc, c.id) {
			continue
		}
		if _, rev := visitorRecord(raw); rev != c.rev {
			continue
		}
		ids[string(c.id)] = struct{}{}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	n := 0
	for id := range ids {
		if err := visitors.Delete([]byte(id)); err != nil {
			return 0, fmt.Errorf("delete %s: %w", bVisitors, err)
		}
		f.gone = append(f.gone, model.VisitorID(id))
		n++
	}
	// Pass 1: the mappings naming a visitor, and the foreign ids they
	// bind; pass 2: every mapping about one of those foreign ids (same
	// system and tenant). Both run over every mapping, so each key is
	// cut into its parts without allocating, and only matches are copied.
	maps, rev := tx.Bucket(bMaps), tx.Bucket(bMapsRev)
	foreign := make(map[string][][]byte) // foreign id -> system ‖ 0 ‖ tenant prefixes
	err := maps.ForEach(func(k, v []byte) error {
		p, ok := mapKeyParts(k)
		if !ok {
			return fmt.Errorf("maps key %q is corrupt", k)
		}
		_, byCore := ids[string(v)]
		_, byForeign := ids[string(p[3])]
		if byCore || byForeign {
			foreign[string(p[3])] = append(foreign[string(p[3])], bytes.Clone(k[:len(p[0])+len(p[1])+2]))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var doomed [][]byte
	err = maps.ForEach(func(k, v []byte) error {
		p, _ := mapKeyParts(k)
		for _, st := range foreign[string(p[3])] {
			if bytes.HasPrefix(k, st) {
				doomed = append(doomed, bytes.Clone(k), bytes.Clone(v))
				break
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(doomed); i += 2 {
		k, v := doomed[i], doomed[i+1]
		p, _ := mapKeyParts(k)
		rk := join(p[0], p[1], p[2], v)
		if bytes.Equal(rev.Get(rk), p[3]) {
			if err := rev.Delete(rk); err != nil {
				return 0, fmt.Errorf("delete %s: %w", bMapsRev, err)
			}
			n++
		}
		if err := maps.Delete(k); err != nil {
			return 0, fmt.Errorf("delete %s: %w", bMaps, err)
		}
		f.mapsGone = append(f.mapsGone, string(k))
		n++
	}
	return n, nil
}
