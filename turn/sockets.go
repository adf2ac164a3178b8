package turn

import (
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"
)

// sockets are the server's sockets by transport. Listeners in tcp are plain
// TCP; listeners in tls hand out connections that speak TLS.
type sockets struct {
	udp []net.PacketConn
	tcp []net.Listener
	tls []net.Listener
}

// openSockets opens the Listen* addresses of s. On error it closes whatever
// it had opened, so New leaves nothing behind.
func openSockets(s settings, log *zap.Logger) (own sockets, err error) {
	defer func() {
		if err != nil {
			own.close()
		}
	}()
	if s.ListenUDP != "" {
		pc, err := net.ListenPacket("udp", s.ListenUDP)
		if err != nil {
			return own, err
		}
		own.udp = append(own.udp, pc)
	}
	if s.ListenTCP != "" {
		l, err := net.Listen("tcp", s.ListenTCP)
		if err != nil {
			return own, err
		}
		own.tcp = append(own.tcp, l)
	}
	if s.ListenTLS != "" {
		certs, err := newCertReloader(s.TLSCertFile, s.TLSKeyFile, log)
		if err != nil {
			return own, err
		}
		l, err := net.Listen("tcp", s.ListenTLS)
		if err != nil {
			return own, err
		}
		// The idle/close wrapper goes under TLS so that pion still sees a
		// *tls.Conn and completes the handshake with its own timeout.
		own.tls = append(own.tls, tls.NewListener(newStreamListener(l, s.lifetime, log), certs.tlsConfig()))
	}
	return own, nil
}

// plus returns own together with the caller's sockets, with every stream
// listener that is not wrapped yet wrapped in a streamListener.
func (own sockets) plus(udp []net.PacketConn, tcp, tlsLns []net.Listener, idle time.Duration, log *zap.Logger) sockets {
	all := sockets{udp: append(append([]net.PacketConn(nil), own.udp...), udp...)}
	for _, l := range append(append([]net.Listener(nil), own.tcp...), tcp...) {
		all.tcp = append(all.tcp, newStreamListener(l, idle, log))
	}
	all.tls = append(all.tls, own.tls...) // wrapped under TLS in openSockets
	for _, l := range tlsLns {
		// Wrapping a caller's TLS listener hides *tls.Conn from pion, which
		// then lets the handshake happen on the first read: same result,
		// bounded by the idle deadline instead of pion's 10 s.
		all.tls = append(all.tls, newStreamListener(l, idle, log))
	}
	return all
}

// close closes the sockets on New's failure path, where a close error would
// only hide the error that matters.
func (own sockets) close() {
	for _, c := range own.udp {
		_ = c.Close()
	}
	for _, l := range append(own.tcp, own.tls...) {
		_ = l.Close()
	}
}
