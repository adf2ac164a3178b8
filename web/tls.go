package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// selfSignedValidity is how long a generated certificate lasts. A new one
// is made at every start, so it only has to outlive one run of the server.
const selfSignedValidity = 90 * 24 * time.Hour

// SelfSignedCert makes a certificate and key for HTTPS when no CA-signed
// certificate exists, as on a clinic's LAN. Browsers expose the camera and
// microphone only in a secure context, and plain http is one only on
// localhost, so a phone joining http://192.168.1.20:8080 would get no
// camera at all. After a one-time certificate warning it does.
//
// The certificate covers "localhost", the machine's host name (and
// name.local for mDNS), 127.0.0.1, ::1, every address of the machine's
// interfaces except link-local ones, and extraHosts (names or IP
// addresses, e.g. a public name behind NAT). The key is ECDSA P-256; the
// parsed certificate is in Leaf, so a caller can log what it covers.
func SelfSignedCert(extraHosts []string) (tls.Certificate, error) {
	hostname, _ := os.Hostname()
	addrs, _ := net.InterfaceAddrs() // no interfaces: loopback names still work
	names, ips, err := certHosts(extraHosts, hostname, addrs)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "consult (self-signed)", Organization: []string{"consult"}},
		// A little slack for clients whose clock is behind.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("web: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// certHosts collects the names and addresses a certificate must cover,
// without duplicates, in a stable order: loopback first, then the host
// name, the interfaces and the extra hosts.
func certHosts(extra []string, hostname string, addrs []net.Addr) ([]string, []net.IP, error) {
	var names []string
	var ips []net.IP
	seenName := map[string]bool{}
	seenIP := map[string]bool{}
	addName := func(n string) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if !seenName[n] {
			seenName[n] = true
			names = append(names, n)
		}
	}
	addIP := func(ip net.IP) {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if ip.IsLinkLocalUnicast() || ip.IsUnspecified() || seenIP[ip.String()] {
			return
		}
		seenIP[ip.String()] = true
		ips = append(ips, ip)
	}
	addName("localhost")
	addIP(net.IPv4(127, 0, 0, 1))
	addIP(net.IPv6loopback)
	if validDNSName(hostname) {
		addName(hostname)
		if !strings.Contains(hostname, ".") {
			addName(hostname + ".local")
		}
	}
	for _, a := range addrs {
		switch v := a.(type) {
		case *net.IPNet:
			addIP(v.IP)
		case *net.IPAddr:
			addIP(v.IP)
		}
	}
	for _, h := range extra {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case net.ParseIP(strings.Trim(h, "[]")) != nil:
			addIP(net.ParseIP(strings.Trim(h, "[]")))
		case validDNSName(h):
			addName(h)
		default:
			return nil, nil, fmt.Errorf("web: %q is neither a host name nor an IP address", h)
		}
	}
	return names, ips, nil
}

// validDNSName accepts host names of letters, digits and hyphens in dot-
// separated labels, with an optional leading "*." for a wildcard.
func validDNSName(name string) bool {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "*."), ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
