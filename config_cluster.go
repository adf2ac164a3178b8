package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// clusterFlags make the server a node of a cluster coordinated through
// Redis (docs/cluster.md). Without -redis the server is a single node and
// none of it is built.
type clusterFlags struct {
	redis         string
	nodeID        string
	publicURL     string
	fallback      string
	allowOrigins  []string
	originsString string
}

func (f *clusterFlags) register(st *settings) {
	st.secret(&f.redis, "redis", "join a cluster coordinated through this Redis (redis://[:password@]host:port/db); empty: a single node")
	st.str(&f.nodeID, "node-id", "", "this node's name in the cluster (default: random at start)")
	st.str(&f.publicURL, "public-url", "", "this node's own base URL, reached by clients and other nodes (e.g. https://node1.example.org); default: from -addr when it names an address")
	st.str(&f.fallback, "redis-down", "refuse", "while Redis is unreachable, new rooms are refused (refuse) or opened on this node (local)")
	st.str(&f.originsString, "allow-origin", "", "other page origins whose pages may connect here, comma-separated (a load balancer's, e.g. https://consult.example.org)")
}

// check validates the flags once parsed.
func (f *clusterFlags) check() error {
	f.allowOrigins = splitList(f.originsString)
	for _, o := range f.allowOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" {
			return fmt.Errorf("-allow-origin: want scheme://host[:port], got %q", o)
		}
	}
	if f.fallback != "refuse" && f.fallback != "local" {
		return fmt.Errorf("-redis-down: want refuse or local, got %q", f.fallback)
	}
	if f.publicURL != "" {
		if u, err := url.Parse(f.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-public-url: want http(s)://host[:port], got %q", f.publicURL)
		}
		f.publicURL = strings.TrimSuffix(f.publicURL, "/")
	}
	return nil
}

// nodeURL is the node's public URL: -public-url, or the listen address
// when it names one (an unspecified one, such as :8080, says nothing
// other nodes could reach).
func (f *clusterFlags) nodeURL(scheme string, ln net.Addr) (string, error) {
	if f.publicURL != "" {
		return f.publicURL, nil
	}
	ta, ok := ln.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsUnspecified() {
		return "", fmt.Errorf("-redis needs -public-url when -addr names no address (%s)", ln)
	}
	return scheme + "://" + ln.String(), nil
}
