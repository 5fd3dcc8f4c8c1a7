package store_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pgProxy is a TCP proxy between the writer and PostgreSQL that understands just enough of the
// wire protocol to lose a COMMIT's reply: armed, it forwards the COMMIT of the next transaction to
// the server (or, with dropBefore, does not), waits until the server has processed it, and then
// cuts the connection without passing the answer on — the writer cannot know whether its batch
// was committed. It also refuses every connection while paused (upstream unreachable).
type pgProxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string

	mu         sync.Mutex
	armed      bool // the next COMMIT's reply is lost
	dropBefore bool // ... and the COMMIT itself is not forwarded
	conns      map[net.Conn]bool

	fired atomic.Int32 // COMMIT replies lost
	down  atomic.Bool  // upstream unreachable: connections are closed at once
}

// setDown makes the database unreachable through the proxy (every connection cut, new ones
// closed at once), or reachable again.
func (p *pgProxy) setDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func newPGProxy(t testing.TB, upstream string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{t: t, ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// viaProxy returns dbURL pointing at the proxy (without TLS, so that the proxy can read it).
func (p *pgProxy) viaProxy(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// upstreamOf returns host:port of a postgres:// URL.
func upstreamOf(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// arm makes the next COMMIT's reply get lost; with dropBefore, the COMMIT is not even forwarded.
func (p *pgProxy) arm(dropBefore bool) {
	p.mu.Lock()
	p.armed, p.dropBefore = true, dropBefore
	p.mu.Unlock()
}

func (p *pgProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *pgProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

// session is one proxied connection.
type session struct {
	p          *pgProxy
	client     net.Conn
	server     net.Conn
	statements map[string]string // prepared statement name → SQL
	cut        chan struct{}     // closed when the COMMIT's reply is to be swallowed
	cutOnce    sync.Once
	dropBefore bool
}

func (p *pgProxy) serve(client net.Conn) {
	if p.down.Load() {
		client.Close()
		return
	}
	p.track(client, true)
	defer p.track(client, false)
	defer client.Close()
	server, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
	if err != nil {
		return // upstream down: the client sees its connection closed
	}
	p.track(server, true)
	defer p.track(server, false)
	defer server.Close()
	s := &session{p: p, client: client, server: server, statements: map[string]string{}, cut: make(chan struct{})}
	if err := s.startup(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { s.fromClient(); done <- struct{}{} }()
	go func() { s.fromServer(); done <- struct{}{} }()
	<-done
}

// startup forwards the untyped startup messages (a TLS or GSS encryption request is declined by
// the server with one byte).
func (s *session) startup() error {
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(s.client, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		if n < 8 || n > 1<<16 {
			return fmt.Errorf("startup length %d", n)
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(s.client, body); err != nil {
			return err
		}
		if _, err := s.server.Write(append(hdr[:], body...)); err != nil {
			return err
		}
		code := binary.BigEndian.Uint32(hdr[4:])
		if code != 80877103 && code != 80877104 { // SSLRequest, GSSENCRequest
			return nil
		}
		var b [1]byte
		if _, err := io.ReadFull(s.server, b[:]); err != nil {
			return err
		}
		if _, err := s.client.Write(b[:]); err != nil {
			return err
		}
	}
}

// readMsg reads one typed protocol message.
func readMsg(r io.Reader) (typ byte, msg []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 {
		return 0, nil, fmt.Errorf("message length %d", n)
	}
	msg = make([]byte, 5+n-4)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return 0, nil, err
	}
	return hdr[0], msg, nil
}

// cstrings splits the NUL-terminated strings at the start of a message body.
func cstrings(body []byte, n int) []string {
	var out []string
	for len(out) < n {
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			break
		}
		out = append(out, string(body[:i]))
		body = body[i+1:]
	}
	return out
}

func isCommit(sql string) bool { return strings.EqualFold(strings.TrimSpace(sql), "COMMIT") }

// fromClient forwards the client's messages, watching for the COMMIT of an armed proxy.
func (s *session) fromClient() {
	r := io.Reader(s.client)
	triggered := false
	for {
		typ, msg, err := readMsg(r)
		if err != nil {
			return
		}
		body := msg[5:]
		if !triggered {
			commit := false
			switch typ {
			case 'P': // Parse: name, query
				if f := cstrings(body, 2); len(f) == 2 {
					s.statements[f[0]] = f[1]
					commit = f[0] == "" && isCommit(f[1])
				}
			case 'B': // Bind: portal, statement
				if f := cstrings(body, 2); len(f) == 2 {
					commit = isCommit(s.statements[f[1]])
				}
			case 'Q': // simple query
				if f := cstrings(body, 1); len(f) == 1 {
					commit = isCommit(f[0])
				}
			}
			if commit {
				s.p.mu.Lock()
				if s.p.armed {
					s.p.armed = false
					triggered = true
					s.dropBefore = s.p.dropBefore
				}
				s.p.mu.Unlock()
				if triggered {
					s.p.fired.Add(1)
					s.cutOnce.Do(func() { close(s.cut) })
					if s.dropBefore {
						// The COMMIT never reaches the server: closing rolls the transaction back.
						s.server.Close()
						s.client.Close()
						return
					}
				}
			}
		}
		if _, err := s.server.Write(msg); err != nil {
			return
		}
	}
}

// fromServer forwards the server's messages; once the COMMIT went out, it swallows them and, when
// the server is ready for the next query (it has committed), cuts both connections.
func (s *session) fromServer() {
	for {
		typ, msg, err := readMsg(s.server)
		if err != nil {
			return
		}
		select {
		case <-s.cut:
			if typ == 'Z' { // ReadyForQuery after the COMMIT: done, and the reply is lost
				s.client.Close()
				s.server.Close()
				return
			}
			continue
		default:
		}
		if _, err := s.client.Write(msg); err != nil {
			return
		}
	}
}
