package customer

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatgate/store/files"
)

func (h *harness) upload(t *testing.T, field string, content []byte, bearer string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile(field, "pic one.png")
	_, _ = fw.Write(content)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v3.5/customer/action/upload_file?organization_id=org-1", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startWeb starts a chat for the token's customer through the Web API and
// returns its chat id.
func (h *harness) startWeb(t *testing.T, tok string) string {
	t.Helper()
	st, b, _ := h.post(t, "/v3.5/customer/action/start_chat?organization_id=org-1", tok,
		`{"chat":{"thread":{"events":[{"type":"message","text":"hi"}]}}}`, nil)
	if st != 200 {
		t.Fatalf("start_chat %d %s", st, b)
	}
	var r struct {
		ChatID string `json:"chat_id"`
	}
	_ = json.Unmarshal(b, &r)
	return r.ChatID
}

func TestUploadFile(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.token(t)
	// No active chat, no upload (issue 16, Medium 6).
	if st, b := h.upload(t, "file", []byte("x"), tok); st != 422 || !strings.Contains(b, "chat_inactive") {
		t.Fatalf("upload without a chat %d %s", st, b)
	}
	h.startWeb(t, tok)
	st, b := h.upload(t, "file", []byte("\x89PNG\r\n\x1a\nsmall"), tok)
	if st != 200 || !strings.Contains(b, `"url":"`+h.srv.URL+`/file-upload/`) || !strings.Contains(b, "pic%20one.png") {
		t.Fatalf("upload %d %s", st, b)
	}
	if st, b = h.upload(t, "file", bytes.Repeat([]byte("a"), 2<<10), tok); st != 413 || !strings.Contains(b, "entity_too_large") {
		t.Fatalf("oversized upload %d %s", st, b)
	}
	if st, b = h.upload(t, "other", []byte("x"), tok); st != 400 || !strings.Contains(b, "validation") {
		t.Fatalf("no file field %d %s", st, b)
	}
	if st, b = h.upload(t, "file", []byte("x"), ""); st != 401 {
		t.Fatalf("no token %d %s", st, b)
	}
}

// TestUploadQuota: a customer's uploads are bounded by the files store's
// per-owner quota, answered limit_reached.
func TestUploadQuota(t *testing.T) {
	h := newHarness(t, nil)
	h.surf.cfg.Files.SetLimits(files.Limits{OwnerFiles: 2})
	tok, _ := h.token(t)
	h.startWeb(t, tok)
	for i := range 2 {
		if st, b := h.upload(t, "file", []byte("x"), tok); st != 200 {
			t.Fatalf("upload %d: %d %s", i, st, b)
		}
	}
	if st, b := h.upload(t, "file", []byte("x"), tok); st != 400 || !strings.Contains(b, "limit_reached") {
		t.Fatalf("upload over quota %d %s", st, b)
	}
	// Another customer has a quota of its own.
	other, _ := h.token(t)
	h.startWeb(t, other)
	if st, b := h.upload(t, "file", []byte("x"), other); st != 200 {
		t.Fatalf("other customer's upload %d %s", st, b)
	}
}

// TestFileEventsOnlyOwnUploads (issue 16, Medium 5): a customer's file
// event must name a file that customer uploaded; javascript:, data:,
// foreign links and other customers' uploads are refused; an accepted one
// is stored with the file's own metadata and claimed (never swept).
func TestFileEventsOnlyOwnUploads(t *testing.T) {
	h := newHarness(t, nil)
	h.surf.cfg.Files.SetLimits(files.Limits{Grace: time.Nanosecond})
	tokA, _ := h.token(t)
	chatA := h.startWeb(t, tokA)
	tokB, _ := h.token(t)
	h.startWeb(t, tokB)
	url := func(tok string) string {
		st, b := h.upload(t, "file", []byte("\x89PNG\r\n\x1a\nsmall"), tok)
		if st != 200 {
			t.Fatalf("upload %d %s", st, b)
		}
		var r UploadResponse
		_ = json.Unmarshal([]byte(b), &r)
		return r.URL
	}
	mine, theirs := url(tokA), url(tokB)
	send := func(u string) (int, string) {
		body, _ := json.Marshal(map[string]any{"chat_id": chatA, "event": map[string]any{"type": "file", "url": u, "name": "x.png"}})
		st, b, _ := h.post(t, "/v3.5/customer/action/send_event?organization_id=org-1", tokA, string(body), nil)
		return st, string(b)
	}
	for _, bad := range []string{"javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "https://evil.example/x.png",
		"https://evil.example/file-upload/" + strings.Repeat("0", 32) + "/x.png", theirs} {
		if st, b := send(bad); st != 400 || !strings.Contains(b, "validation") {
			t.Errorf("file event with %q: %d %s", bad, st, b)
		}
	}
	if st, b := send(mine); st != 200 {
		t.Fatalf("own upload: %d %s", st, b)
	}
	// The sweep takes the unreferenced upload (B's) and keeps A's.
	n, err := h.surf.cfg.Files.Sweep(t.Context(), time.Now().Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want 1", n, err)
	}
	idMine, _ := files.IDFromURL(mine)
	idTheirs, _ := files.IDFromURL(theirs)
	if _, fh, err := h.surf.cfg.Files.Get(t.Context(), idMine); err != nil {
		t.Errorf("sent file swept: %v", err)
	} else {
		fh.Close()
	}
	if _, _, err := h.surf.cfg.Files.Get(t.Context(), idTheirs); err == nil {
		t.Error("unreferenced upload kept")
	}
}
