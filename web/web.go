// Package web serves the browser client, embedded in the binary so that
// nothing is fetched from elsewhere at run time.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the client's files; unknown paths get index.html so that
// invite links like /?room=R work from any path.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if _, err := fs.Stat(sub, trimSlash(r.URL.Path)); err != nil {
			r.URL.Path = "/"
		}
		fsrv.ServeHTTP(w, r)
	})
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if p == "" {
		return "."
	}
	return p
}
