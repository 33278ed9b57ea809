package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"chatgate/store/files"
)

// UploadResponse is upload_file's payload (both Web APIs).
type UploadResponse struct {
	URL string `json:"url"`
}

// ReadUpload stores the multipart field "file" of an upload_file request
// in fs as a pending file of owner (it stays pending until an event
// references it; see store/files) and returns it. The body is bounded to
// the file limit plus 1 MiB for the other parts and headers, so a client
// cannot stream unbounded non-file parts.
//
// A fault of the request comes back as *Error in the API's own shape
// (validation, entity_too_large, limit_reached); any other error is the
// server's, for the caller to log and answer as internal_error. Both APIs
// answer alike so that agent and customer apps see the same errors.
func ReadUpload(ctx context.Context, w http.ResponseWriter, r *http.Request, fs *files.Store, owner string) (files.File, error) {
	tooLarge := func() error { return Errorf(EntityTooLarge, "Upload limit exceeded (%d bytes).", fs.MaxSize()) }
	r.Body = http.MaxBytesReader(w, r.Body, fs.MaxSize()+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return files.File{}, Errorf(Validation, "multipart/form-data with a file field is required")
	}
	for {
		part, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return files.File{}, Errorf(Validation, "file is required")
		case errors.As(err, &mbe):
			return files.File{}, tooLarge()
		case err != nil:
			return files.File{}, Errorf(Validation, "Invalid multipart body")
		}
		if part.FormName() != "file" {
			_ = part.Close()
			continue
		}
		name := part.FileName()
		if name == "" {
			name = "file"
		}
		f, err := fs.PutPending(ctx, owner, name, part.Header.Get("Content-Type"), part)
		_ = part.Close()
		switch {
		case errors.Is(err, files.ErrTooLarge), errors.As(err, &mbe):
			return files.File{}, tooLarge()
		case errors.Is(err, files.ErrQuota):
			return files.File{}, Errorf(LimitReached, "Upload quota reached")
		case err != nil:
			return files.File{}, fmt.Errorf("upload_file: %w", err)
		}
		return f, nil
	}
}

// BaseURL is where file URLs start: publicURL when configured, else the
// scheme and Host the request came to (forwarded headers are not trusted
// here; the server's trusted-proxy handling rewrites the request first).
func BaseURL(publicURL string, r *http.Request) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
