package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesThePageForAnyRouteAndAssetsByName(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, wantType, wantBody string
		wantCode                 int
	}{
		{"/", "text/html", `<script type="module" src="/js/main.js">`, 200},
		{"/?room=r1&name=Ann&autojoin=1", "text/html", `id="lobby"`, 200},
		{"/index.html", "text/html", `id="lobby"`, 200},
		{"/consult/r1", "text/html", `id="lobby"`, 200},
		{"/js/", "text/html", `id="lobby"`, 200}, // no directory listings
		{"/js/main.js", "text/javascript", "import", 200},
		{"/css/base.css", "text/css", ":root", 200},
		{"/favicon.svg", "image/svg+xml", "<svg", 200},
		{"/js/missing.js", "text/plain", "404", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := get(t, h, "GET", tc.path, nil)
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantCode)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.wantType)
			}
			if !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("body lacks %q", tc.wantBody)
			}
			for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Permissions-Policy"} {
				if res.Header.Get(k) == "" {
					t.Errorf("missing header %s", k)
				}
			}
		})
	}
}

func TestHandlerRevalidatesWithETags(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/js/app.js", nil)
	tag := res.Header.Get("ETag")
	if tag == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", tag, res.Header.Get("Cache-Control"))
	}
	if res := get(t, h, "GET", "/js/app.js", map[string]string{"If-None-Match": tag}); res.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d", res.StatusCode)
	}
	if res := get(t, h, "GET", "/js/ui.js", map[string]string{"If-None-Match": tag}); res.StatusCode != http.StatusOK {
		t.Fatalf("another file's tag matched: %d", res.StatusCode)
	}
}

func TestHandlerRefusesWrites(t *testing.T) {
	res := get(t, Handler(), "POST", "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// The page must never put text into HTML: display names are shown with
// textContent. This guards against a later edit reaching for innerHTML.
func TestClientNeverParsesHTMLFromStrings(t *testing.T) {
	entries, err := files.ReadDir("static/js")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile("static/js/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", e.Name(), bad)
			}
		}
	}
}
