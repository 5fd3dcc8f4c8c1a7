//go:build !linux

package main

import "net"

// sysIO is empty here: a benchConn reads and writes its connection as it is.
type sysIO struct{}

func (s *sysIO) init(net.Conn) error { return nil }

func (c *benchConn) read(p []byte) (int, error) { return c.conn.Read(p) }

func (c *benchConn) write(p []byte) error {
	_, err := c.conn.Write(p)
	return err
}
