package packetcache

import (
	"bytes"
	"testing"
)

func TestStoreGetAndEviction(t *testing.T) {
	c := New(20) // rounds to 32
	c.Store(10, []byte("ten"))
	c.Store(65535, []byte("max"))
	dst := make([]byte, MaxPacket)
	if n := c.Get(10, dst); !bytes.Equal(dst[:n], []byte("ten")) {
		t.Fatalf("got %q", dst[:n])
	}
	if n := c.Get(65535, dst); !bytes.Equal(dst[:n], []byte("max")) {
		t.Fatalf("got %q", dst[:n])
	}
	if n := c.Get(11, dst); n != 0 {
		t.Fatal("found a packet never stored")
	}
	c.Store(10+32, []byte("later")) // same slot as 10
	if n := c.Get(10, dst); n != 0 {
		t.Fatal("evicted packet still returned")
	}
	if n := c.Get(10, make([]byte, 2)); n != 0 {
		t.Fatal("short destination must return 0")
	}
	c.Store(1, make([]byte, MaxPacket+1))
	if n := c.Get(1, dst); n != 0 {
		t.Fatal("oversized packet cached")
	}
}

func BenchmarkStoreGet(b *testing.B) {
	c := New(512)
	pkt := make([]byte, 1200)
	dst := make([]byte, MaxPacket)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Store(uint16(i), pkt)
		c.Get(uint16(i), dst)
	}
}
