// Package packetcache keeps the recent packets of one published track so
// that every subscriber's retransmission requests are answered from a single
// copy, and so that per-subscriber queues can carry sequence numbers instead
// of packets.
package packetcache

import "sync"

// MaxPacket is the largest packet the cache stores; larger ones (which no
// sane sender produces over UDP) are simply not cached.
const MaxPacket = 1500

type slot struct {
	seq   uint16
	n     uint16
	valid bool
	buf   [MaxPacket]byte
}

// Cache is a ring of packets indexed by sequence number. One goroutine
// stores; any number read. Readers copy out, so the lock is held only for a
// memcpy and never across a network write.
type Cache struct {
	mu    sync.RWMutex
	slots []slot
	mask  uint16
}

// New returns a cache holding the last size packets; size is rounded up to
// a power of two between 16 and 32768.
func New(size int) *Cache {
	n := 16
	for n < size && n < 1<<15 {
		n <<= 1
	}
	return &Cache{slots: make([]slot, n), mask: uint16(n - 1)}
}

// Store keeps a copy of pkt under seq, evicting whatever shared its slot.
func (c *Cache) Store(seq uint16, pkt []byte) {
	if len(pkt) > MaxPacket {
		return
	}
	c.mu.Lock()
	s := &c.slots[seq&c.mask]
	s.seq, s.n, s.valid = seq, uint16(len(pkt)), true
	copy(s.buf[:], pkt)
	c.mu.Unlock()
}

// Get copies the packet stored under seq into dst and returns its length,
// or 0 when the packet is not (or no longer) in the cache or dst is short.
func (c *Cache) Get(seq uint16, dst []byte) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := &c.slots[seq&c.mask]
	if !s.valid || s.seq != seq || int(s.n) > len(dst) {
		return 0
	}
	return copy(dst, s.buf[:s.n])
}
