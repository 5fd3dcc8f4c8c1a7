package main

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter is the HTTP listener with a cap on open connections, like
// golang.org/x/net/netutil.LimitListener, with one difference that keeps the listener usable
// when it is full: a connection that is idle between requests (a keep-alive) or has not sent a
// request yet is closed to make room for a new one, oldest first, instead of the new one waiting
// behind it. Only connections busy with a request make new ones wait, and those are bounded by
// the server's read and write timeouts. Its ConnState method must be the http.Server's ConnState.
type connLimiter struct {
	net.Listener
	max     int
	freed   chan struct{} // a slot was released
	done    chan struct{} // the listener was closed
	closeMu sync.Once

	mu   sync.Mutex
	open int
	// waiting holds the connections that may be closed to make room (new or idle), with the
	// time they became so.
	waiting map[net.Conn]time.Time

	gauge   prometheus.Gauge
	evicted prometheus.Counter
}

func newConnLimiter(l net.Listener, max int, reg prometheus.Registerer) (*connLimiter, error) {
	cl := &connLimiter{
		Listener: l,
		max:      max,
		freed:    make(chan struct{}, 1),
		done:     make(chan struct{}),
		waiting:  make(map[net.Conn]time.Time),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaxgate_http_connections",
			Help: "Open HTTP connections.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_http_connections_evicted_total",
			Help: "Idle HTTP connections closed to make room for new ones at http.max_connections.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{cl.gauge, cl.evicted} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return cl, nil
}

// Accept accepts a connection, then waits for a free slot for it, making one from an idle
// connection when it can. (It accepts first so that idle connections are closed only for a
// client that is really there; so one connection beyond the cap may wait here.)
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select { // a stale signal from a release nobody waited for
	case <-l.freed:
	default:
	}
	for !l.acquire() {
		select {
		case <-l.freed:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	l.waiting[lc] = time.Now()
	l.mu.Unlock()
	return lc, nil
}

// acquire takes a slot, or closes the connection that has waited longest for a request and
// reports false (its slot is then freed).
func (l *connLimiter) acquire() bool {
	l.mu.Lock()
	if l.open < l.max {
		l.open++
		l.gauge.Set(float64(l.open))
		l.mu.Unlock()
		return true
	}
	var victim net.Conn
	var since time.Time
	for c, t := range l.waiting {
		if victim == nil || t.Before(since) {
			victim, since = c, t
		}
	}
	if victim != nil {
		delete(l.waiting, victim)
	}
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Inc()
		victim.Close()
	}
	return false
}

func (l *connLimiter) release() {
	l.mu.Lock()
	l.open--
	l.gauge.Set(float64(l.open))
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// ConnState follows the server's connections: new and idle ones may be closed to make room.
func (l *connLimiter) ConnState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := c.(*limitedConn); !ok {
		return
	}
	switch st {
	case http.StateIdle:
		l.waiting[c] = time.Now()
	case http.StateActive, http.StateHijacked, http.StateClosed:
		delete(l.waiting, c)
	}
}

// Close closes the listener and wakes a waiting Accept.
func (l *connLimiter) Close() error {
	l.closeMu.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back once, when it is closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.waiting, c)
		c.l.mu.Unlock()
		c.l.release()
	})
	return err
}
