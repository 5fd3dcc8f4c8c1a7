package admin

// SetDecisionHook makes Decide pass every decision through h, until restore is called: the
// permission matrix test changes one decision and checks that the matrix notices.
func SetDecisionHook(h func(Action, Decision) Decision) (restore func()) {
	old := decisionHook.Swap(&h)
	return func() { decisionHook.Store(old) }
}
