package admin

import "github.com/vaxgate/vaxgate/admin/internal/testhook"

// SetDecisionHook makes Decide pass every decision through h, until restore is called: the
// permission matrix test changes one decision and checks that the matrix notices.
func SetDecisionHook(h func(Action, Decision) Decision) (restore func()) {
	old := testhook.Swap(testhook.Hook{F: h})
	return func() { testhook.Swap(old) }
}
