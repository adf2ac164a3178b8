package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"consult/client"
	"consult/protocol"
)

// A cluster under load: -url takes several nodes' signaling URLs,
// comma-separated. Clients dial them in turn, as a load balancer spreads
// them, and follow the servers' redirects to each room's node; the result
// counts the rooms and clients each node ended up with, and adds each
// node's own load report (GET /api/nodes, open when the servers run
// without auth) at the end of the window.

// NodeResult is one node's share of a run.
type NodeResult struct {
	URL      string             `json:"url"`
	ID       string             `json:"id,omitempty"`
	Rooms    int                `json:"rooms"`
	Clients  int                `json:"clients"`
	Load     *protocol.NodeLoad `json:"load,omitempty"`
	Draining bool               `json:"draining,omitempty"`
}

// entryURLs splits -url.
func entryURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// entry is the URL the next client dials.
func (r *run) entry() string {
	i := int(r.nextEntry.Add(1) - 1)
	return r.entries[i%len(r.entries)]
}

// placed notes where a client of room ended up (after any redirect).
func (r *run) placed(room string, cl *client.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := cl.URL()
	if r.where == nil {
		r.where = map[string]map[string]int{}
	}
	if r.where[at] == nil {
		r.where[at] = map[string]int{}
	}
	r.where[at][room]++
}

// nodeResults is the rooms and clients per node, with the nodes' load as
// the cluster reports it. Nil for a run against one server that sent no
// client elsewhere.
func (r *run) nodeResults(ctx context.Context) []NodeResult {
	r.mu.Lock()
	var out []NodeResult
	for at, rooms := range r.where {
		nr := NodeResult{URL: at, Rooms: len(rooms)}
		for _, n := range rooms {
			nr.Clients += n
		}
		out = append(out, nr)
	}
	r.mu.Unlock()
	if len(r.entries) == 1 && len(out) == 1 && out[0].URL == r.entries[0] {
		return nil
	}
	nodes := clusterNodes(ctx, r.entries[0])
	for i := range out {
		for _, n := range nodes {
			if n.SignalURL() == out[i].URL {
				out[i].ID, out[i].Draining = n.ID, n.Draining
				out[i].Load = &n.Load
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// clusterNodes asks a node for the cluster's nodes; none if it will not say.
func clusterNodes(ctx context.Context, wsURL string) []protocol.Node {
	addr, ok := debugURL(wsURL, "/api/nodes", "")
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, addr, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var nodes []protocol.Node
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&nodes) != nil {
		return nil
	}
	return nodes
}
