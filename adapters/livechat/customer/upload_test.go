package customer

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func TestUploadFile(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.token(t)
	upload := func(field string, content []byte, bearer string) (int, string) {
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
	st, b := upload("file", []byte("\x89PNG\r\n\x1a\nsmall"), tok)
	if st != 200 || !strings.Contains(b, `"url":"`+h.srv.URL+`/file-upload/`) || !strings.Contains(b, "pic%20one.png") {
		t.Fatalf("upload %d %s", st, b)
	}
	if st, b = upload("file", bytes.Repeat([]byte("a"), 2<<10), tok); st != 413 || !strings.Contains(b, "entity_too_large") {
		t.Fatalf("oversized upload %d %s", st, b)
	}
	if st, b = upload("other", []byte("x"), tok); st != 400 || !strings.Contains(b, "validation") {
		t.Fatalf("no file field %d %s", st, b)
	}
	if st, b = upload("file", []byte("x"), ""); st != 401 {
		t.Fatalf("no token %d %s", st, b)
	}
}
