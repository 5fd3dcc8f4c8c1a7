package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// DefaultClientTimeout is the default time a Client waits for each ACK, and for the connection.
const DefaultClientTimeout = 30 * time.Second

// ErrClientBroken is returned (wrapped) by every call after an exchange failed: the connection is
// then out of step (a late ACK could be taken for the next message's) and must be replaced.
var ErrClientBroken = errors.New("mllp: connection unusable after an earlier failure")

// Client is an MLLP connection to a server. Its methods may be called from several goroutines,
// but exchanges are serialized: one Send or SendPipelined at a time.
type Client struct {
	conn    net.Conn
	fr      *hl7.FrameReader
	timeout time.Duration

	mu     sync.Mutex
	buf    []byte
	broken error
}

type clientOptions struct {
	timeout time.Duration
	maxACK  int
	dialer  *net.Dialer
}

// DialOption configures Dial.
type DialOption func(*clientOptions)

// WithTimeout sets the time allowed to connect and, for each message, to get its ACK back
// (default DefaultClientTimeout). A context deadline, when earlier, wins.
func WithTimeout(d time.Duration) DialOption {
	return func(o *clientOptions) { o.timeout = d }
}

// WithMaxACKSize sets the largest ACK frame accepted (default DefaultMaxMessageSize).
func WithMaxACKSize(n int) DialOption {
	return func(o *clientOptions) { o.maxACK = n }
}

// WithDialer sets the dialer used to connect (for a local address, keep-alive settings...).
func WithDialer(d *net.Dialer) DialOption {
	return func(o *clientOptions) { o.dialer = d }
}

// Dial connects to the MLLP server at addr (host:port), over TLS when tlsConfig is not nil (its
// ServerName defaults to addr's host).
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config, opts ...DialOption) (*Client, error) {
	o := clientOptions{timeout: DefaultClientTimeout, maxACK: DefaultMaxMessageSize}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("mllp: dial %s: timeout must be positive", addr)
	}
	if o.maxACK <= 0 {
		o.maxACK = DefaultMaxMessageSize
	}
	d := net.Dialer{}
	if o.dialer != nil {
		d = *o.dialer
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	if tlsConfig != nil {
		cfg := tlsConfig.Clone()
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
			}
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("mllp: dial %s: TLS handshake: %w", addr, err)
		}
		nc = tc
	}
	return &Client{conn: nc, fr: hl7.NewFrameReader(nc, o.maxACK), timeout: o.timeout}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mllp: close: %w", err)
	}
	return nil
}

// checkMessage refuses a message that would break the framing: the server would read its
// 0x1C 0x0D as the end of the frame and the rest as another message.
func checkMessage(msg []byte) error {
	if len(msg) == 0 {
		return errors.New("mllp: empty message")
	}
	if bytes.IndexByte(msg, startBlock) >= 0 || bytes.IndexByte(msg, endBlock) >= 0 {
		return fmt.Errorf("mllp: %w", hl7.ErrFrameContent)
	}
	return nil
}

// Send sends one message and returns its ACK. Any failure (including ctx ending) leaves the
// client broken: later calls return ErrClientBroken.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if err := checkMessage(msg); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientBroken, c.broken)
	}
	a, err := c.exchange(ctx, msg)
	if err != nil {
		c.broken = err
		return nil, err
	}
	return a, nil
}

func (c *Client) exchange(ctx context.Context, msg []byte) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	// After SetDeadline: if ctx ended before, AfterFunc may already have run and been undone.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	c.buf = hl7.AppendFrame(c.buf[:0], msg)
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, c.wrap(ctx, "send", err)
	}
	frame, err := c.fr.ReadFrame()
	if err != nil {
		return nil, c.wrap(ctx, "read ACK", err)
	}
	return append([]byte(nil), frame...), nil
}

// wrap names what failed, preferring the context's error when the context ended it.
func (c *Client) wrap(ctx context.Context, what string, err error) error {
	if cerr := context.Cause(ctx); cerr != nil {
		return fmt.Errorf("mllp: %s: %w", what, cerr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline was the context's, and fired before the context's own timer.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return fmt.Errorf("mllp: %s: %w", what, context.DeadlineExceeded)
		}
	}
	return fmt.Errorf("mllp: %s: %w", what, err)
}

// SendPipelined sends the messages of msgs without waiting for each ACK, keeping at most window
// of them unanswered, and calls onAck for each ACK in order: i counts messages from 0, rtt is the
// time from sending message i to receiving its ACK, and ack is valid only until onAck returns.
// It returns when every message sent has been answered, or at the first failure, which leaves
// the client broken. msgs is iterated in a goroutine of its own.
func (c *Client) SendPipelined(ctx context.Context, msgs iter.Seq[[]byte], window int, onAck func(i int, ack []byte, rtt time.Duration)) error {
	if window < 1 {
		window = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrClientBroken, c.broken)
	}
	if err := c.pipeline(ctx, msgs, window, onAck); err != nil {
		c.broken = err
		// The writer may still be running: make its next write fail at once.
		_ = c.conn.SetDeadline(aLongTimeAgo)
		return err
	}
	return nil
}

func (c *Client) pipeline(ctx context.Context, msgs iter.Seq[[]byte], window int, onAck func(int, []byte, time.Duration)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	slots := make(chan struct{}, window) // one per message sent and not answered
	sent := make(chan time.Time, window) // send times, in order; closed when all are sent
	var writeErr error                   // set before sent is closed
	go func() {
		defer close(sent)
		writeErr = c.writeAll(ctx, msgs, slots, sent)
		if writeErr != nil {
			cancel(writeErr)
		}
	}()

	i := 0
	for t := range sent {
		if err := c.conn.SetReadDeadline(t.Add(c.timeout)); err != nil {
			cancel(err)
			return fmt.Errorf("mllp: read ACK %d: %w", i, err)
		}
		if err := context.Cause(ctx); err != nil {
			return fmt.Errorf("mllp: read ACK %d: %w", i, err)
		}
		frame, err := c.fr.ReadFrame()
		if err != nil {
			err = c.wrap(ctx, fmt.Sprintf("read ACK %d", i), err)
			cancel(err)
			return err
		}
		onAck(i, frame, time.Since(t))
		i++
		<-slots
	}
	if writeErr != nil {
		return writeErr
	}
	return nil
}

// writeAll is SendPipelined's writer: it waits for a free slot of the window, then sends.
func (c *Client) writeAll(ctx context.Context, msgs iter.Seq[[]byte], slots chan<- struct{}, sent chan<- time.Time) error {
	var buf []byte
	i := 0
	for msg := range msgs {
		if err := checkMessage(msg); err != nil {
			return fmt.Errorf("mllp: message %d: %w", i, err)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("mllp: send message %d: %w", i, context.Cause(ctx))
		}
		now := time.Now()
		if err := c.conn.SetWriteDeadline(now.Add(c.timeout)); err != nil {
			return fmt.Errorf("mllp: send message %d: %w", i, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mllp: send message %d: %w", i, context.Cause(ctx))
		}
		buf = hl7.AppendFrame(buf[:0], msg)
		sent <- now // never blocks: slots bounds the messages in flight
		if _, err := c.conn.Write(buf); err != nil {
			return c.wrap(ctx, fmt.Sprintf("send message %d", i), err)
		}
		i++
	}
	return nil
}
