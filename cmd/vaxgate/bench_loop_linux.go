//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/mllp"
)

// benchHasEventLoop says whether runEventLoop can run here.
const benchHasEventLoop = true

// runEventLoop drives every connection of a run without a --rate schedule from this goroutine,
// on an epoll instance of its own: it waits for the connections with ACKs to read, reads each
// once, and writes, in one write per connection, the messages their windows then allow. Per
// message that is a read and a write system call and no more; the trip through Go's network
// poller and scheduler (which, made by a goroutine per connection for every message, cost as
// much as the rest of the generator at one message in flight) is made once per wake-up, for
// all the ACKs that came together (the connections are dialled with net.Dialer, then their
// sockets are taken out of Go's poller). It returns false, having done nothing, where it cannot
// run (no epoll instance, or one Go cannot poll); each lane's error is in the lane.
func runEventLoop(ctx context.Context, o benchOptions, lanes []*benchLane, local *atomic.Pointer[netip.Addr]) bool {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	// The loop waits for the epoll instance in Go's network poller (an epoll instance is
	// readable when it has events), not in a blocking epoll_wait of its own: the goroutine is then
	// parked like any other, and the runtime's monitor thread sleeps, instead of taking the
	// processor from a goroutine that never leaves its system call.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return false
	}
	epf := os.NewFile(uintptr(epfd), "epoll")
	defer epf.Close()
	erc, err := epf.SyscallConn()
	if err != nil || epf.SetReadDeadline(time.Time{}) != nil { // not in Go's poller
		return false
	}
	w := &epollWaiter{epfd: epfd, events: make([]syscall.EpollEvent, 128)}
	w.fn = w.poll
	// The context's end wakes the loop through an eventfd.
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return false
	}
	efd := int(r)
	defer syscall.Close(efd)
	stopIdx := int32(len(lanes))
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, efd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: stopIdx}); err != nil {
		return false
	}
	stop := context.AfterFunc(ctx, func() {
		one := [8]byte{1}
		_, _ = syscall.Write(efd, one[:])
	})
	defer stop()

	window := max(o.window, 1)
	conns := make([]*loopConn, len(lanes))
	active := 0
	for i, l := range lanes {
		c := &loopConn{lane: l, fd: -1, ackReader: ackReader{maxACK: mllp.DefaultMaxMessageSize}, sentAt: make([]time.Time, window), idx: int32(i)}
		conns[i] = c
		fd, err := dialFD(ctx, o.addr, local)
		if err == nil {
			c.fd = fd
			err = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(i)})
			if err != nil {
				err = fmt.Errorf("mllp: epoll: %w", err)
			}
		}
		if err != nil {
			c.fail(err)
			continue
		}
		active++
	}
	// Every connection writes what its window allows; then each writes again after reading
	// ACKs. The ACK and write deadlines are checked every tick (they are
	// mllp.DefaultClientTimeout long: a tick late is nothing).
	const tick = 100 * time.Millisecond
	for _, c := range conns {
		if !c.done {
			if err := c.send(epfd, window); err != nil {
				c.fail(err)
				active--
			}
		}
	}
	nextCheck := time.Now().Add(tick)
	var ready []*loopConn  // read from in this wake-up
	var deadline time.Time // set on epf
	for active > 0 {
		if !deadline.Equal(nextCheck) {
			if err := epf.SetReadDeadline(nextCheck); err != nil {
				return w.failAll(conns, err)
			}
			deadline = nextCheck
		}
		w.n, w.errno = 0, 0
		err := erc.Read(w.fn)
		if err == nil && w.errno != 0 {
			err = os.NewSyscallError("epoll_pwait", w.errno)
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return w.failAll(conns, err)
		}
		for _, ev := range w.events[:w.n] {
			if ev.Fd == stopIdx {
				cause := context.Cause(ctx)
				for _, c := range conns {
					if !c.done {
						c.fail(fmt.Errorf("mllp: read ACK %d: %w", c.acked, cause))
						active--
					}
				}
				break
			}
			c := conns[ev.Fd]
			if c.done {
				continue
			}
			if c.pend != nil && ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				if err := c.flush(epfd); err != nil {
					c.fail(err)
					active--
					continue
				}
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				if err := c.receive(); err != nil {
					c.fail(err)
					active--
					continue
				}
				if c.acked == c.lane.n {
					c.close()
					active--
					continue
				}
				ready = append(ready, c)
			}
		}
		// Then write: every ACK of this wake-up was read, and timed, before the next messages
		// are built and written.
		for _, c := range ready {
			if !c.done && c.pend == nil {
				if err := c.send(epfd, window); err != nil {
					c.fail(err)
					active--
				}
			}
		}
		ready = ready[:0]
		if now := time.Now(); !now.Before(nextCheck) {
			nextCheck = now.Add(tick)
			for _, c := range conns {
				if c.done {
					continue
				}
				switch {
				case c.pend != nil && !now.Before(c.pendSince.Add(mllp.DefaultClientTimeout)):
					c.fail(fmt.Errorf("mllp: send message %d: %w", c.pendFirst, os.ErrDeadlineExceeded))
					active--
				case c.pend == nil && c.sent > c.acked && !now.Before(c.sentAt[c.acked%window].Add(mllp.DefaultClientTimeout)):
					c.fail(fmt.Errorf("mllp: read ACK %d: %w", c.acked, os.ErrDeadlineExceeded))
					active--
				}
			}
		}
	}
	return true
}

// epollWaiter takes the events of an epoll instance without waiting (the function given to
// RawConn.Read, made once).
type epollWaiter struct {
	epfd   int
	events []syscall.EpollEvent
	n      int
	errno  syscall.Errno
	fn     func(uintptr) bool
}

func (w *epollWaiter) poll(uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(w.epfd), uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)), 0, 0, 0)
		switch e {
		case 0:
			w.n = int(r)
			return w.n > 0
		case syscall.EINTR:
			continue
		}
		w.errno = e
		return true
	}
}

// failAll ends every connection still running with err.
func (w *epollWaiter) failAll(conns []*loopConn, err error) bool {
	for _, c := range conns {
		if !c.done {
			c.fail(fmt.Errorf("mllp: epoll: %w", err))
		}
	}
	return true
}

// loopConn is a connection of runEventLoop.
type loopConn struct {
	lane *benchLane
	fd   int
	ackReader
	wbuf        []byte
	pend        []byte // the part of wbuf the socket did not take yet (nil: none)
	pendSince   time.Time
	pendFirst   int
	sentAt      []time.Time
	sent, acked int
	done        bool
	idx         int32 // in the epoll events
	watchOut    bool  // waiting for the socket to be writable
}

func (c *loopConn) close() {
	if c.fd >= 0 {
		syscall.Close(c.fd) // closing removes it from the epoll instance
		c.fd = -1
	}
	c.done = true
}

func (c *loopConn) fail(err error) {
	c.lane.err = err
	c.close()
}

// send writes the messages the window allows, in one write.
func (c *loopConn) send(epfd, window int) error {
	l := c.lane
	if c.sent == l.n || c.sent-c.acked == window {
		return nil
	}
	c.wbuf = c.wbuf[:0]
	first := c.sent
	for c.sent < l.n && c.sent-c.acked < window {
		c.wbuf = append(c.wbuf, hl7.FrameStart)
		start := len(c.wbuf)
		c.wbuf = l.next(c.wbuf)
		if bytes.IndexByte(c.wbuf[start:], hl7.FrameStart) >= 0 || bytes.IndexByte(c.wbuf[start:], hl7.FrameEnd) >= 0 {
			return fmt.Errorf("mllp: message %d: %w", c.sent, hl7.ErrFrameContent)
		}
		c.wbuf = append(c.wbuf, hl7.FrameEnd, '\r')
		c.sent++
	}
	t := time.Now()
	for i := first; i < c.sent; i++ {
		c.sentAt[i%window] = t
	}
	c.pend, c.pendSince, c.pendFirst = c.wbuf, t, first
	return c.flush(epfd)
}

// flush writes what is pending; what the socket does not take waits for it to be writable.
func (c *loopConn) flush(epfd int) error {
	for len(c.pend) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&c.pend[0])), uintptr(len(c.pend)))
		switch e {
		case 0:
			c.pend = c.pend[r:]
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
		default:
			return fmt.Errorf("mllp: send message %d: %w", c.pendFirst, os.NewSyscallError("write", e))
		}
		break
	}
	if len(c.pend) == 0 {
		c.pend = nil
	}
	if out := c.pend != nil; out != c.watchOut {
		events := uint32(syscall.EPOLLIN)
		if out {
			events |= syscall.EPOLLOUT
		}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: events, Fd: c.idx}); err != nil {
			return fmt.Errorf("mllp: epoll: %w", err)
		}
		c.watchOut = out
	}
	return nil
}

// receive reads once and hands the complete ACKs to the lane.
func (c *loopConn) receive() error {
	if err := c.room(); err != nil {
		return fmt.Errorf("mllp: read ACK %d: %w", c.acked, err)
	}
	var n int
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&c.rbuf[c.w])), uintptr(len(c.rbuf)-c.w))
		switch e {
		case 0:
			n = int(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return nil
		default:
			return fmt.Errorf("mllp: read ACK %d: %w", c.acked, os.NewSyscallError("read", e))
		}
		break
	}
	at := time.Now()
	if n == 0 {
		return fmt.Errorf("mllp: read ACK %d: %w", c.acked, io.EOF)
	}
	c.w += n
	for {
		frame, ok := c.frame()
		if !ok {
			return nil
		}
		if c.acked == c.sent {
			return fmt.Errorf("mllp: read ACK %d: an ACK came for no message in flight", c.acked)
		}
		c.lane.onAck(c.acked, frame, at.Sub(c.sentAt[c.acked%len(c.sentAt)]), at)
		c.acked++
	}
}

// dialFD connects as net.Dialer does (with its timeout and the context), then takes the socket
// out of Go's network poller: a duplicate of its descriptor, non-blocking like it, stays open
// when the net.Conn is closed.
func dialFD(ctx context.Context, addr string, local *atomic.Pointer[netip.Addr]) (int, error) {
	d := net.Dialer{}
	dctx, cancel := context.WithTimeout(ctx, mllp.DefaultClientTimeout)
	defer cancel()
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return -1, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	defer nc.Close()
	if tc, ok := nc.(*net.TCPConn); ok && benchSendBuffer > 0 {
		if err := tc.SetWriteBuffer(benchSendBuffer); err != nil {
			return -1, fmt.Errorf("mllp: dial %s: %w", addr, err)
		}
	}
	a := localAddrOf(nc.LocalAddr())
	local.CompareAndSwap(nil, &a)
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("mllp: dial %s: not a socket", addr)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	if derr != nil {
		return -1, fmt.Errorf("mllp: dial %s: %w", addr, derr)
	}
	return fd, nil
}
