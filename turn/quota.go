package turn

import "sync"

// quota counts open relay sockets per user and in total.
//
// pion asks its QuotaHandler before creating an allocation, but the check and
// the creation are not atomic (TCP clients are served concurrently), and an
// allocation can still fail after the check. So the QuotaHandler only peeks
// (allowed), which gives clients the proper 486 answer in the common case, and
// the relay address generator takes the slot for real (acquire) when it opens
// the socket and gives it back when the socket closes (release). The counts
// therefore always equal the relay sockets that exist.
type quota struct {
	perUser int // 0 means no limit
	total   int // 0 means no limit

	mu    sync.Mutex
	users map[string]int
	n     int
}

func newQuota(perUser, total int) *quota {
	return &quota{perUser: perUser, total: total, users: make(map[string]int)}
}

// allowed reports whether user could take one more slot now.
func (q *quota) allowed(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.fitsLocked(user)
}

// acquire takes a slot for user if the quotas allow it.
func (q *quota) acquire(user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.fitsLocked(user) {
		return false
	}
	q.users[user]++
	q.n++
	return true
}

// release gives back a slot taken by acquire.
func (q *quota) release(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	if q.users[user] <= 1 {
		delete(q.users, user) // keep the map from growing with every user ever seen
	} else {
		q.users[user]--
	}
}

func (q *quota) fitsLocked(user string) bool {
	if q.total > 0 && q.n >= q.total {
		return false
	}
	return q.perUser <= 0 || q.users[user] < q.perUser
}

// count returns the number of slots in use.
func (q *quota) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
