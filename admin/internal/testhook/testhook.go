// Package testhook holds the admin module's one test seam: a function that admin.Decide passes
// every decision through while a test has set it (see admin/admintest.SetDecisionHook). The
// permission matrices of the admin API and of the web portal use it to prove that they fail when
// one decision changes. Only package admin and admin/admintest import it.
package testhook

import "sync/atomic"

// Hook wraps the decision hook (a func(admin.Action, admin.Decision) admin.Decision; nil F: none).
type Hook struct{ F any }

// Decision is the current hook (zero Hook: none).
var Decision atomic.Value

func init() { Decision.Store(Hook{}) }

// Swap sets the hook and returns the previous one.
func Swap(h Hook) Hook { return Decision.Swap(h).(Hook) }

// Load returns the current hook.
func Load() Hook { return Decision.Load().(Hook) }
