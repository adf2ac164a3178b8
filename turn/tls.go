package turn

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certCheckInterval is how often the certificate files are looked at for
// changes. Renewal tools replace certificates days before expiry, so a
// minute is plenty and keeps stat calls off most handshakes.
const certCheckInterval = time.Minute

// certReloader serves the certificate in certFile/keyFile and reloads it when
// either file's modification time changes, so that a renewed certificate
// (certbot, cert-manager) is picked up without a restart. A file that fails
// to load is logged and the previous certificate kept.
type certReloader struct {
	certFile, keyFile string
	log               *zap.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	lastCheck       time.Time
}

func newCertReloader(certFile, keyFile string, log *zap.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(time.Now()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.lastCheck) >= certCheckInterval {
		if err := r.load(now); err != nil {
			r.log.Warn("turn TLS certificate reload failed, keeping the old one", zap.Error(err))
		}
	}
	return r.cert, nil
}

// load reads the pair if it changed since the last load. Called with mu held
// (or before r is shared).
func (r *certReloader) load(now time.Time) error {
	r.lastCheck = now
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("turn: TLS certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("turn: TLS key: %w", err)
	}
	if r.cert != nil && ci.ModTime().Equal(r.certMod) && ki.ModTime().Equal(r.keyMod) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("turn: TLS key pair: %w", err)
	}
	if r.cert != nil {
		r.log.Info("turn TLS certificate reloaded", zap.String("cert", r.certFile))
	}
	r.cert, r.certMod, r.keyMod = &cert, ci.ModTime(), ki.ModTime()
	return nil
}
