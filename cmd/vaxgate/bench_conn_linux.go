//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sysIO reads and writes the socket of a benchConn with raw system calls, waiting for it through
// Go's network poller (syscall.RawConn) only when it would block. The socket is non-blocking, so
// a call never blocks; made as an ordinary system call it costs the runtime more than the call
// itself: entering and leaving the syscall state, waking the runtime's monitor thread, which
// then hands the processor to another thread. On one core's worth of load generation that was
// about a third of the generator's CPU per message at one message in flight.
type sysIO struct {
	rc syscall.RawConn
	// The current call's buffer and result: the functions given to rc are method values made
	// once (a closure per call would be an allocation per call).
	buf     []byte
	n       int
	errno   syscall.Errno
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
}

func (s *sysIO) init(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil // plain reads and writes
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw connection: %w", err)
	}
	s.rc = rc
	s.readFn = s.readOnce
	s.writeFn = s.writeSome
	return nil
}

func (s *sysIO) readOnce(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable
		}
		s.n, s.errno = int(r), e
		return true
	}
}

// writeSome writes what it can of s.buf, and asks to wait until writable while some is left.
func (s *sysIO) writeSome(fd uintptr) bool {
	for len(s.buf) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case 0:
			s.buf = s.buf[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.errno = e
			return true
		}
	}
	return true
}

// read reads into p (not empty) like conn.Read: io.EOF at the end of the stream, the
// connection's deadline errors (os.ErrDeadlineExceeded) as they are.
func (c *benchConn) read(p []byte) (int, error) {
	s := &c.sys
	if s.rc == nil {
		return c.conn.Read(p)
	}
	s.buf, s.n, s.errno = p, 0, 0
	err := s.rc.Read(s.readFn)
	s.buf = nil
	if err != nil {
		return 0, err
	}
	if s.errno != 0 {
		return 0, os.NewSyscallError("read", s.errno)
	}
	if s.n == 0 {
		return 0, io.EOF
	}
	return s.n, nil
}

// write writes all of p like conn.Write.
func (c *benchConn) write(p []byte) error {
	s := &c.sys
	if s.rc == nil {
		_, err := c.conn.Write(p)
		return err
	}
	s.buf, s.errno = p, 0
	err := s.rc.Write(s.writeFn)
	left := len(s.buf)
	s.buf = nil
	if err != nil {
		return err
	}
	if s.errno != 0 {
		return os.NewSyscallError("write", s.errno)
	}
	if left > 0 {
		return errors.New("short write")
	}
	return nil
}
