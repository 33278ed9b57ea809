package customer

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store/files"
)

// ownFile checks a customer's file event (issue 16, Medium 5): its url
// must name a file this customer uploaded with upload_file (no
// javascript:, data: or foreign links shown to agents as the customer's
// file). The stored event gets the file's own name, type and size, and a
// URL rebuilt from public_url (else the scheme and host the customer
// used, with the canonical path). The file is claimed, so the sweep of
// unreferenced uploads keeps it.
func (c *client) ownFile(ctx context.Context, d *desk.Draft) error {
	if d.Kind != model.KindFile || d.File == nil {
		return nil
	}
	bad := wire.Errorf(wire.Validation, "event.url must be a URL upload_file returned to this customer")
	fs := c.s.cfg.Files
	raw := d.File.URL
	id, ok := files.IDFromURL(raw)
	if fs == nil || !ok {
		return bad
	}
	f, fh, err := fs.Get(ctx, id)
	if errors.Is(err, files.ErrNotFound) {
		return bad
	}
	if err != nil {
		return err
	}
	_ = fh.Close()
	if f.Owner != string(c.me) {
		return bad
	}
	base := strings.TrimSuffix(c.s.cfg.PublicURL, "/")
	if base == "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad
		}
		base = u.Scheme + "://" + u.Host
	}
	if _, err := fs.Claim(ctx, id); err != nil {
		return err
	}
	d.File = &model.File{URL: base + files.Path(f), Name: f.Name, ContentType: f.ContentType, Size: f.Size}
	return nil
}
