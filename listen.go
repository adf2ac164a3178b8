package main

import (
	"net"
	"strconv"

	"go.uber.org/zap"
)

// browseURLs are the addresses the start-up log gives a person: open for
// a browser on this machine (localhost when the server listens on every
// interface: no browser opens http://[::]:8080, and only localhost makes
// plain http a secure context, with the camera), and lan for the other
// devices of the network (empty when the server listens on loopback, or
// the machine has no LAN address).
func browseURLs(scheme string, addr net.Addr, lanIP string) (open, lan string) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String(), ""
	}
	port := strconv.Itoa(ta.Port)
	switch {
	case ta.IP == nil || ta.IP.IsUnspecified():
		open = scheme + "://localhost:" + port
		if lanIP != "" && lanIP != "127.0.0.1" {
			lan = "https://" + net.JoinHostPort(lanIP, port)
		}
	case ta.IP.IsLoopback():
		open = scheme + "://localhost:" + port
	default:
		open = scheme + "://" + net.JoinHostPort(ta.IP.String(), port)
		lan = "https://" + net.JoinHostPort(ta.IP.String(), port)
	}
	return open, lan
}

// logListening says where to open the client, and how other devices get
// a camera: over https, which plain http cannot give them.
func logListening(log *zap.Logger, scheme string, addr net.Addr, fields ...zap.Field) {
	open, lan := browseURLs(scheme, addr, firstIPv4())
	log.Info("listening: open this address in a browser", append([]zap.Field{zap.String("url", open)}, fields...)...)
	switch {
	case lan == "":
	case scheme == "https":
		log.Info("other devices on the network open", zap.String("url", lan))
	default:
		log.Info("phones and other computers get a camera only over https: start with -tls-self-signed (or -tls-cert), then open",
			zap.String("url", lan))
	}
}
