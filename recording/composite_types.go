package recording

// Composite states.
const (
	CompositeQueued  = "queued"
	CompositeRunning = "running"
	CompositeDone    = "done"
	CompositeFailed  = "failed"
)

// CompositeInfo is the one MP4 a stopped recording is composed into.
type CompositeInfo struct {
	Path     string  `json:"path,omitempty"`
	Name     string  `json:"name"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"` // 0..1
	Bytes    int64   `json:"bytes,omitempty"`
	SHA256   string  `json:"sha256,omitempty"`
	Error    string  `json:"error,omitempty"`
}
