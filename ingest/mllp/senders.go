package mllp

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ingest"
)

// SourceRanges is implemented by a Senders that can list the address ranges of its active MLLP
// credentials (the store does). The server then reserves ReservedConnections for connections
// from those ranges, re-reading them every SenderTTL (at least every second).
type SourceRanges interface {
	MLLPSourceRanges(ctx context.Context) ([]netip.Prefix, error)
}

// senderCacheMax bounds the cached lookups; expired ones are swept when it is reached, and
// lookups beyond it are made without caching.
const senderCacheMax = 4096

// senderCache shares sender lookups between connections for ttl, so that re-checking every
// message's sender costs one query per source and ttl, not one per message. Unknown senders are
// cached too (a new credential takes effect within ttl); failed lookups are not.
type senderCache struct {
	src ingest.Senders
	ttl time.Duration

	mu sync.Mutex
	m  map[senderKey]*senderEntry
}

type senderKey struct {
	addr    netip.Addr
	subject string
}

type senderEntry struct {
	done   chan struct{} // closed when the lookup is done
	sender *ingest.Sender
	err    error
	at     time.Time
}

func newSenderCache(src ingest.Senders, ttl time.Duration) *senderCache {
	return &senderCache{src: src, ttl: ttl, m: make(map[senderKey]*senderEntry)}
}

// lookup returns the sender for addr and subject, from the cache when the lookup is younger than
// ttl and fresh is false; concurrent lookups of the same key wait for one query. A new
// connection asks for a fresh lookup (as it always did), so that only the re-checks of open
// connections are served from the cache.
func (c *senderCache) lookup(ctx context.Context, addr netip.Addr, subject string, fresh bool) (*ingest.Sender, error) {
	if c.ttl <= 0 {
		return c.src.MLLPSender(ctx, addr, subject)
	}
	k := senderKey{addr, subject}
	c.mu.Lock()
	if e, ok := c.m[k]; ok && !fresh {
		select {
		case <-e.done:
			if time.Since(e.at) < c.ttl {
				c.mu.Unlock()
				return e.sender, e.err
			}
		default:
			c.mu.Unlock()
			select {
			case <-e.done:
				return e.sender, e.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	e := &senderEntry{done: make(chan struct{})}
	if len(c.m) >= senderCacheMax {
		c.sweepLocked()
	}
	cached := len(c.m) < senderCacheMax
	if cached {
		c.m[k] = e
	}
	c.mu.Unlock()

	e.sender, e.err = c.src.MLLPSender(ctx, addr, subject)
	e.at = time.Now()
	if e.err != nil && !errors.Is(e.err, ingest.ErrUnknownSender) && cached {
		c.mu.Lock()
		if c.m[k] == e {
			delete(c.m, k)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.sender, e.err
}

// cached returns a lookup younger than ttl, if there is one, without waiting for anything.
func (c *senderCache) cached(addr netip.Addr, subject string) (senderResult, bool) {
	if c.ttl <= 0 {
		return senderResult{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[senderKey{addr, subject}]
	if !ok {
		return senderResult{}, false
	}
	select {
	case <-e.done:
		if time.Since(e.at) < c.ttl {
			return senderResult{e.sender, e.err, e.at}, true
		}
	default:
	}
	return senderResult{}, false
}

// senderResult is a lookup's outcome.
type senderResult struct {
	sender *ingest.Sender
	err    error
	at     time.Time // when the lookup was made
}

func (c *senderCache) sweepLocked() {
	for k, e := range c.m {
		select {
		case <-e.done:
			if time.Since(e.at) >= c.ttl {
				delete(c.m, k)
			}
		default:
		}
	}
}

// knownSources holds the address ranges of the registered MLLP senders, refreshed in the
// background, for the reserved connection slots.
type knownSources struct {
	src    SourceRanges // nil: no source is known by address
	every  time.Duration
	log    *zap.Logger
	ranges atomic.Pointer[[]netip.Prefix]
	once   sync.Once
	ready  chan struct{} // closed after the first refresh
}

func (k *knownSources) init(s ingest.Senders, ttl time.Duration, log *zap.Logger) {
	k.src, _ = s.(SourceRanges)
	k.every = max(ttl, time.Second)
	k.log = log
	k.ready = make(chan struct{})
}

// start refreshes the ranges now and then every k.every until ctx ends. The first refresh is
// waited for (briefly), so that known senders are recognised from the first connection.
func (k *knownSources) start(ctx context.Context) {
	if k.src == nil {
		return
	}
	k.once.Do(func() {
		go func() {
			k.refresh(ctx)
			close(k.ready)
			t := time.NewTicker(k.every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					k.refresh(ctx)
				}
			}
		}()
		select {
		case <-k.ready:
		case <-time.After(senderLookupTimeout):
		}
	})
}

func (k *knownSources) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, senderLookupTimeout)
	defer cancel()
	r, err := k.src.MLLPSourceRanges(ctx)
	if err != nil {
		// Keep the last ranges: a database hiccup must not take reserved slots away.
		if ctx.Err() == nil {
			k.log.Warn("mllp: reading the registered senders' address ranges failed", zap.Error(err))
		}
		return
	}
	k.ranges.Store(&r)
}

// contains reports whether a registered sender's address range contains addr.
func (k *knownSources) contains(addr netip.Addr) bool {
	p := k.ranges.Load()
	if p == nil || !addr.IsValid() {
		return false
	}
	for _, r := range *p {
		if r.Contains(addr) {
			return true
		}
	}
	return false
}

// RefreshSourceRanges re-reads the registered senders' address ranges now, rather than at the
// next SenderTTL tick (serve calls it after creating the demo site). It does nothing when the
// Senders cannot list ranges.
func (s *Server) RefreshSourceRanges(ctx context.Context) {
	if s.known.src != nil {
		s.known.refresh(ctx)
	}
}
