// Package web serves the browser client, embedded in the binary so that
// nothing is fetched from elsewhere at run time, and makes the self-signed
// certificate that lets phones on a LAN reach the camera over HTTPS.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// contentSecurityPolicy allows only what the client needs from its own
// origin: its scripts and styles, the signaling WebSocket and the room API
// ('self' matches ws:/wss: of the same host in CSP 3), media from local
// streams. No inline script can run, which takes the teeth out of any
// markup injection through a display name.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// permissionsPolicy grants the devices to this origin only; a page that
// frames us cannot borrow them (frame-ancestors forbids framing anyway).
const permissionsPolicy = "camera=(self), microphone=(self), display-capture=(self), speaker-selection=(self)"

// Handler serves the client's files. Paths without a file extension get
// index.html, so invite links work from any path; a missing asset is a 404
// rather than HTML the browser would try to run as a script. Embedded files
// have no modification time, so each gets an ETag from its content: a new
// binary is picked up at once, an unchanged file costs a 304.
func Handler() http.Handler { return HandlerWith(Options{}) }

// Options change what Handler serves.
type Options struct {
	// ConnectSources are other origins the page may open sockets to (a
	// cluster's nodes, ws:// or wss://), read at each request.
	ConnectSources func() []string
}

// HandlerWith is Handler with options.
func HandlerWith(opt Options) http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	etags, err := contentTags(sub)
	if err != nil {
		panic(err)
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		csp := contentSecurityPolicy
		if opt.ConnectSources != nil {
			if extra := opt.ConnectSources(); len(extra) > 0 {
				csp = strings.Replace(csp, "connect-src 'self'", "connect-src 'self' "+strings.Join(extra, " "), 1)
			}
		}
		h.Set("Content-Security-Policy", csp)
		h.Set("Permissions-Policy", permissionsPolicy)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := trimSlash(r.URL.Path)
		if _, ok := etags[name]; !ok {
			if path.Ext(name) != "" {
				http.NotFound(w, r)
				return
			}
			name = "index.html"
		}
		if name == "index.html" {
			// Serve the page as "/", which keeps FileServer from
			// redirecting /index.html; the caller's request is not touched.
			u := *r.URL
			u.Path = "/"
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		tag := etags[name]
		h.Set("ETag", tag)
		h.Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

// contentTags maps every file's path to a strong ETag of its content.
func contentTags(fsys fs.FS) (map[string]string, error) {
	tags := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags[p] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags, err
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if p == "" {
		return "index.html"
	}
	return p
}
