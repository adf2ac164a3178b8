package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedCertServesHTTPSForLoopbackAndExtraHosts(t *testing.T) {
	cert, err := SelfSignedCert([]string{"consult.example", "203.0.113.9", " "})
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", cert.PrivateKey)
	}
	if leaf.IsCA || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("usage: CA %v, ext %v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	if time.Until(leaf.NotAfter) < 30*24*time.Hour || time.Now().Before(leaf.NotBefore) {
		t.Fatalf("validity %v..%v", leaf.NotBefore, leaf.NotAfter)
	}
	for _, h := range []string{"localhost", "consult.example"} {
		if !slices.Contains(leaf.DNSNames, h) {
			t.Errorf("DNS names %v lack %q", leaf.DNSNames, h)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "203.0.113.9"} {
		if !slices.ContainsFunc(leaf.IPAddresses, func(x net.IP) bool { return x.Equal(net.ParseIP(ip)) }) {
			t.Errorf("IPs %v lack %s", leaf.IPAddresses, ip)
		}
	}

	// A client that trusts this certificate (as a browser does once the
	// user accepts it) completes a handshake for each name it covers.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"localhost", "consult.example", "127.0.0.1", "203.0.113.9"} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}}
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL)
		if err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "other.example"}}
	if _, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(srv.URL); err == nil {
		t.Fatal("a name the certificate does not cover was accepted")
	}
	tr.CloseIdleConnections()
}

func TestSelfSignedCertRejectsAMalformedHost(t *testing.T) {
	for _, bad := range []string{"bad host", "-lead.example", "a..b", "under_score.example", "http://x"} {
		if _, err := SelfSignedCert([]string{bad}); err == nil || !strings.Contains(err.Error(), "neither") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestCertHostsCoverHostnameAndInterfacesButNotLinkLocal(t *testing.T) {
	_, lan, _ := net.ParseCIDR("192.168.1.20/24")
	lan.IP = net.ParseIP("192.168.1.20")
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		lan,
		&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
		&net.IPNet{IP: net.ParseIP("fd00::2"), Mask: net.CIDRMask(64, 128)},
	}
	names, ips, err := certHosts([]string{"*.Clinic.example.", "192.168.1.20"}, "exam-room", addrs)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"localhost", "exam-room", "exam-room.local", "*.clinic.example"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names %v, want %v", names, wantNames)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	wantIPs := []string{"127.0.0.1", "::1", "192.168.1.20", "fd00::2"}
	if !slices.Equal(got, wantIPs) {
		t.Fatalf("ips %v, want %v", got, wantIPs)
	}
}
