package turn

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// TestMalformedInputDoesNotWedgeServer throws broken and hostile packets at
// the UDP and TCP ports, unauthenticated and authenticated (so that pion's
// attribute parsers behind the auth check run too), then proves the server
// still allocates and relays. A panic in any server goroutine would kill
// the test binary.
func TestMalformedInputDoesNotWedgeServer(t *testing.T) {
	srv, _ := startServer(t, nil)
	user, pass := creds("fuzzer")

	t.Run("udp", func(t *testing.T) {
		conn, err := net.Dial("udp4", srv.Addrs().UDP[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i, p := range unauthenticatedGarbage() {
			if _, err := conn.Write(p); err != nil {
				t.Fatalf("write: %v", err)
			}
			if i%20 == 19 {
				drain(t, conn) // keep the server's receive buffer from overflowing
			}
		}
		nonce := fetchNonce(t, conn)
		for _, p := range authenticatedGarbage(user, pass, nonce, false) {
			if _, err := conn.Write(p); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		// A real allocation on this 5-tuple, so the requests that follow
		// reach the parsers that run only when an allocation exists.
		alloc := authed(stun.MethodAllocate, user, pass, nonce, rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}})
		if res := transact(t, conn, alloc); res.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("raw Allocate: %s", res)
		}
		for _, p := range authenticatedGarbage(user, pass, nonce, true) {
			if _, err := conn.Write(p); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		// The read loop handles datagrams in order: once this answer comes
		// back, everything above has been processed.
		drain(t, conn)
	})

	t.Run("tcp", func(t *testing.T) {
		addr := srv.Addrs().TCP[0].String()
		nonce := ""
		cases := unauthenticatedGarbage()
		// Send the authenticated ones with a nonce from a UDP probe: nonces
		// are not tied to a transport.
		udp, err := net.Dial("udp4", srv.Addrs().UDP[0].String())
		if err != nil {
			t.Fatal(err)
		}
		nonce = fetchNonce(t, udp)
		_ = udp.Close()
		cases = append(cases, authenticatedGarbage(user, pass, nonce, false)...)
		// A frame header announcing more than pion's read buffer holds.
		huge := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
		binary.BigEndian.PutUint16(huge[2:4], 0xfff0)
		cases = append(cases, huge)

		// Each case on its own connection: garbage makes pion drop the
		// connection, which is the right answer but would hide later cases.
		for _, p := range cases {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial after %d cases: %v", len(cases), err)
			}
			_, _ = conn.Write(p) // the server may already have closed it
			_ = conn.Close()
		}
		// Several frames in one write, garbage after a good one: the good one
		// is still answered.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		good := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		if _, err := conn.Write(append(append([]byte{}, good.Raw...), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)); err != nil {
			t.Fatal(err)
		}
		if res := readSTUN(t, conn); res.TransactionID != good.TransactionID {
			t.Fatalf("answer to the good frame: %s", res)
		}
	})

	if got := srv.Stats().BadRequests; got == 0 {
		t.Error("BadRequests = 0: the garbage never reached the server")
	}
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
		addr net.Addr
	}{
		{"udp", nil, srv.Addrs().UDP[0]},
		{"tcp", func() (net.Conn, error) { return net.Dial("tcp", srv.Addrs().TCP[0].String()) }, srv.Addrs().TCP[0]},
	} {
		user, pass := creds("after-" + tc.name)
		client := udpClient(t, srv, user, pass)
		if tc.dial != nil {
			client = streamClient(t, tc.addr, tc.dial, user, pass)
		}
		relay, err := client.Allocate()
		if err != nil {
			t.Fatalf("%s allocation after garbage: %v", tc.name, err)
		}
		roundTrips(t, relay, echoPeer(t).LocalAddr(), 2, 64)
	}
}

// unauthenticatedGarbage is what anyone on the internet can send.
func unauthenticatedGarbage() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: the same packets every run
	var out [][]byte
	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw

	out = append(out, []byte{}, []byte{0}, make([]byte, 3000)) // empty, 1 byte, larger than the MTU
	for n := 1; n < len(binding); n++ {
		out = append(out, binding[:n]) // truncated header
	}
	lying := append([]byte{}, binding...)
	binary.BigEndian.PutUint16(lying[2:4], 400) // length beyond the datagram
	out = append(out, lying)
	// An attribute whose length runs past the end of the message.
	overflow := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}).Raw
	binary.BigEndian.PutUint16(overflow[22:24], 0x0fff)
	out = append(out, overflow)
	// Unknown comprehension-required attribute; unknown method; every class.
	out = append(out,
		stun.MustBuild(stun.TransactionID, stun.BindingRequest, rawAttr{0x0030, []byte{1, 2, 3}}).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.Method(0x0ff), stun.ClassRequest)).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse)).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication)).Raw,
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
			rawAttr{stun.AttrData, []byte("x")}).Raw,
	)
	// ChannelData: lying length, unbound channel, invalid channel number.
	out = append(out,
		[]byte{0x40, 0x00, 0xff, 0xff, 1, 2, 3, 4},
		[]byte{0x40, 0x01, 0x00, 0x04, 1, 2, 3, 4},
		[]byte{0x7f, 0xff, 0x00, 0x00},
	)
	// Random bytes, some dressed up with a STUN header to get further in.
	for i := range 300 {
		p := make([]byte, rng.IntN(200))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if i%2 == 0 && len(p) >= 20 {
			binary.BigEndian.PutUint16(p[0:2], uint16(rng.IntN(0x3fff)))
			binary.BigEndian.PutUint16(p[2:4], uint16(len(p)-20)&^3)
			binary.BigEndian.PutUint32(p[4:8], 0x2112a442) // STUN magic cookie
		}
		out = append(out, p)
	}
	return out
}

// authenticatedGarbage are well-authenticated requests with broken
// attributes: what any participant holding credentials can send.
func authenticatedGarbage(user, pass, nonce string, allocated bool) [][]byte {
	udp := rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}
	a := func(m stun.Method, attrs ...stun.Setter) []byte { return authed(m, user, pass, nonce, attrs...) }
	if !allocated {
		return [][]byte{
			a(stun.MethodAllocate),
			a(stun.MethodAllocate, rawAttr{stun.AttrRequestedTransport, []byte{17}}),
			a(stun.MethodAllocate, rawAttr{stun.AttrRequestedTransport, []byte{0, 0, 0, 0}}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrRequestedAddressFamily, []byte{7, 0, 0, 0}}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrRequestedAddressFamily, []byte{2, 0, 0, 0}}), // IPv6: not offered
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrLifetime, []byte{0, 0}}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrLifetime, []byte{0, 0, 0, 0}}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrEvenPort, nil}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrReservationToken, []byte{1, 2, 3}}),
			a(stun.MethodAllocate, udp, rawAttr{stun.AttrDontFragment, nil}),
			a(stun.MethodRefresh, rawAttr{stun.AttrLifetime, []byte{0, 0, 0, 0}}),
			a(stun.MethodCreatePermission, xorPeer{IP: net.IPv4(8, 8, 8, 8), Port: 1}),
			a(stun.MethodConnectionBind, rawAttr{stun.AttrConnectionID, []byte{1}}),
		}
	}
	return [][]byte{
		a(stun.MethodCreatePermission),
		a(stun.MethodCreatePermission, rawAttr{stun.AttrXORPeerAddress, []byte{0, 7, 0, 1}}),
		a(stun.MethodCreatePermission, rawAttr{stun.AttrXORPeerAddress, []byte{0, 1, 0}}),
		a(stun.MethodCreatePermission, xorPeer{IP: net.ParseIP("2001:4860::8888"), Port: 1}), // family mismatch
		a(stun.MethodChannelBind, rawAttr{stun.AttrChannelNumber, []byte{0, 1, 0, 0}}, xorPeer{IP: net.IPv4(8, 8, 8, 8), Port: 1}),
		a(stun.MethodChannelBind, rawAttr{stun.AttrChannelNumber, []byte{0x40}}, xorPeer{IP: net.IPv4(8, 8, 8, 8), Port: 1}),
		a(stun.MethodChannelBind, rawAttr{stun.AttrChannelNumber, []byte{0x40, 0, 0, 0}}),
		a(stun.MethodRefresh, rawAttr{stun.AttrRequestedAddressFamily, []byte{9, 0, 0, 0}}),
		a(stun.MethodConnect, xorPeer{IP: net.IPv4(8, 8, 8, 8), Port: 80}),
		stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
			rawAttr{stun.AttrXORPeerAddress, []byte{0, 1}}, rawAttr{stun.AttrData, []byte("x")}).Raw,
		// ChannelData on a channel this allocation never bound.
		{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4},
	}
}

// drain waits until the server has processed everything sent on conn so far.
func drain(t *testing.T, conn net.Conn) {
	t.Helper()
	if res := transact(t, conn, stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); res.Type != stun.BindingSuccess {
		t.Fatalf("binding: %s", res)
	}
}

// authed builds a request signed with the long-term credentials.
func authed(method stun.Method, user, pass, nonce string, attrs ...stun.Setter) []byte {
	setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
	setters = append(setters, attrs...)
	setters = append(setters, stun.NewUsername(user), stun.NewRealm(testRealm), stun.NewNonce(nonce),
		stun.NewLongTermIntegrity(user, testRealm, pass), stun.Fingerprint)
	return stun.MustBuild(setters...).Raw
}

// fetchNonce sends an unauthenticated Allocate and returns the nonce of the
// 401 answer.
func fetchNonce(t *testing.T, conn net.Conn) string {
	t.Helper()
	res := transact(t, conn, stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}).Raw)
	var nonce stun.Nonce
	if err := nonce.GetFrom(res); err != nil {
		t.Fatalf("no nonce in %s: %v", res, err)
	}
	return nonce.String()
}

// transact sends req on a datagram conn and returns the response with the
// same transaction ID, skipping answers to earlier requests. Like any STUN
// client over UDP it retransmits: a burst of garbage can fill the server's
// receive buffer, and the kernel then drops datagrams.
func transact(t *testing.T, conn net.Conn, req []byte) *stun.Message {
	t.Helper()
	want := &stun.Message{Raw: append([]byte{}, req...)}
	if err := want.Decode(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	buf := make([]byte, 1600)
	for time.Now().Before(deadline) {
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				break // retransmit
			}
			res := &stun.Message{Raw: append([]byte{}, buf[:n]...)}
			if res.Decode() == nil && res.TransactionID == want.TransactionID {
				return res
			}
		}
	}
	t.Fatalf("no answer to %s", want)
	return nil
}

// readSTUN reads one STUN message from a stream conn (one small answer on
// loopback arrives in one read).
func readSTUN(t *testing.T, conn net.Conn) *stun.Message {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1600)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return m
}
