package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"chatgate/store"
)

// PutBlob stores an uploaded file (store/files.Blobs): with several nodes
// every node must serve every file, so on PostgreSQL file bodies live in
// the database, bounded by store.max_upload_bytes. Durable when it returns
// (its own transaction, synchronous_commit as the server has it), but not
// through the group-commit writer: a body of megabytes in a group would
// hold every message queued behind it (group.go), and a file gains nothing
// from sharing a transaction. As a queued commit, once sent it runs to its
// end whatever the caller's context does (bounded by CommitTimeout).
func (s *Store) PutBlob(ctx context.Context, id string, meta, body []byte) error {
	if err := s.readCtx(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put file: %w", err)
	}
	if body == nil {
		body = []byte{}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.CommitTimeout)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO files (id, meta, body) VALUES ($1, $2, $3)`, id, meta, body); err != nil {
		return mapErr(err)
	}
	return nil
}

// GetBlob returns a stored file's metadata and body; store.ErrNotFound when
// there is none.
func (s *Store) GetBlob(ctx context.Context, id string) (meta, body []byte, err error) {
	if err := s.readCtx(); err != nil {
		return nil, nil, err
	}
	if !textOK(id) {
		return nil, nil, store.ErrNotFound
	}
	err = s.pool.QueryRow(ctx, `SELECT meta, body FROM files WHERE id = $1`, id).Scan(&meta, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, store.ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: %w", err)
	}
	return meta, body, nil
}

// EachBlobMeta calls fn with every stored file's metadata
// (store/files.BlobKeeper: quotas and the sweep of unreferenced uploads).
func (s *Store) EachBlobMeta(ctx context.Context, fn func(meta []byte)) error {
	if err := s.readCtx(); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT meta FROM files`)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var meta []byte
		if err := rows.Scan(&meta); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		fn(meta)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// SwapBlobMeta replaces a stored file's metadata (a claimed upload) if it
// is still old; false when another node changed or removed it meanwhile.
func (s *Store) SwapBlobMeta(ctx context.Context, id string, old, meta []byte) (bool, error) {
	return s.blobChanged(ctx, `WITH c AS (UPDATE files SET meta = $3 WHERE id = $1 AND meta = $2 RETURNING 1)
SELECT count(*) FROM c`, id, old, meta)
}

// DeleteBlobIf removes a stored file (an upload no event references) if
// its metadata is still old; false when another node changed (claimed)
// or removed it meanwhile.
func (s *Store) DeleteBlobIf(ctx context.Context, id string, old []byte) (bool, error) {
	return s.blobChanged(ctx, `WITH c AS (DELETE FROM files WHERE id = $1 AND meta = $2 RETURNING 1)
SELECT count(*) FROM c`, id, old)
}

// blobChanged commits one conditional statement that counts the rows it
// changed.
func (s *Store) blobChanged(ctx context.Context, sql string, args ...any) (bool, error) {
	var n int64
	q := &work{}
	q.QueueRow(sql, func(r pgx.Row) error { return r.Scan(&n) }, args...)
	if err := s.run(ctx, q); err != nil {
		return false, err
	}
	return n == 1, nil
}
