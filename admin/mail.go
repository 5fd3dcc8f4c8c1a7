package admin

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SMTPConfig is where invitation emails are sent. The client says EHLO, upgrades with STARTTLS
// when the server offers it (required when RequireTLS is set), authenticates with PLAIN when a
// username is configured (net/smtp sends credentials only over TLS or to localhost), and sends.
type SMTPConfig struct {
	Addr       string        // host:port; empty: email is not configured
	From       string        // envelope and header sender, e.g. "registry@example.org"
	Username   string        // optional AUTH PLAIN
	Password   string        // never logged
	HelloName  string        // EHLO name (default "localhost")
	RequireTLS bool          // refuse to send without STARTTLS
	TLSConfig  *tls.Config   // for STARTTLS (default: ServerName from Addr, system roots)
	Timeout    time.Duration // whole conversation (default 30s)
	// Dir, when Addr is empty, is a mail drop folder: each e-mail is written there as one .eml
	// file instead of being sent (a local mail catcher for evaluation and development).
	Dir string
}

// Configured reports whether email can be sent (or dropped in Dir).
func (c SMTPConfig) Configured() bool { return (c.Addr != "" || c.Dir != "") && c.From != "" }

// mailMessage is one plain-text email.
type mailMessage struct {
	To      string
	Subject string
	Body    string
}

// sendMail delivers m through the configured SMTP server.
func sendMail(ctx context.Context, c SMTPConfig, m mailMessage, now time.Time) error {
	if !c.Configured() {
		return errors.New("smtp: no server configured")
	}
	if strings.ContainsAny(m.To+c.From, "\r\n") {
		return errors.New("smtp: address contains a line break")
	}
	if c.Addr == "" {
		return dropMail(c.Dir, formatMail(c.From, m, now), now)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("smtp: address %q: %w", c.Addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("smtp: dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer cl.Close()
	hello := c.HelloName
	if hello == "" {
		hello = "localhost"
	}
	if err := cl.Hello(hello); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok {
		cfg := c.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := cl.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	} else if c.RequireTLS {
		return errors.New("smtp: server does not offer STARTTLS and TLS is required")
	}
	if c.Username != "" {
		if ok, _ := cl.Extension("AUTH"); !ok {
			return errors.New("smtp: server does not offer AUTH")
		}
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("smtp: AUTH: %w", err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := cl.Rcpt(m.To); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(formatMail(c.From, m, now)); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: end of message: %w", err)
	}
	if err := cl.Quit(); err != nil {
		return fmt.Errorf("smtp: QUIT: %w", err)
	}
	return nil
}

// dropMail writes one e-mail into the mail drop folder, readable by its owner only (it holds
// registration links), under a name that sorts by time.
func dropMail(dir string, msg []byte, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mail drop: %w", err)
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	name := filepath.Join(dir, now.UTC().Format("20060102T150405.000000Z")+"-"+hex.EncodeToString(id)+".eml")
	if err := os.WriteFile(name, msg, 0o600); err != nil {
		return fmt.Errorf("mail drop: %w", err)
	}
	return nil
}

// formatMail renders headers and body (RFC 5322; the DATA writer turns LF into CRLF and
// dot-stuffs).
func formatMail(from string, m mailMessage, now time.Time) []byte {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := "vaxgate.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		domain = from[i+1:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\n", from)
	fmt.Fprintf(&b, "To: %s\n", m.To)
	fmt.Fprintf(&b, "Subject: %s\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n\n")
	b.WriteString(m.Body)
	if !strings.HasSuffix(m.Body, "\n") {
		b.WriteString("\n")
	}
	return []byte(b.String())
}
