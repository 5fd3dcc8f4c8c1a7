//go:build !linux

package main

import (
	"context"
	"net/netip"
	"sync/atomic"
)

// benchHasEventLoop says whether runEventLoop can run here.
const benchHasEventLoop = false

// runEventLoop is not available here: every connection gets a goroutine of its own.
func runEventLoop(context.Context, benchOptions, []*benchLane, *atomic.Pointer[netip.Addr]) bool {
	return false
}
