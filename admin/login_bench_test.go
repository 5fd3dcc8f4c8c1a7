package admin_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
)

// BenchmarkLoginAnswer measures what a password guesser can time: a wrong password, an unknown
// username, and the right password of an account locked for the guesser's address are all
// answered invalid_credentials, and should take about as long (one argon2id verification with the
// production parameters, plus the audit entry). Compare the ns/op of the three.
func BenchmarkLoginAnswer(b *testing.B) {
	saved := passwd.DefaultParams
	passwd.DefaultParams = passwd.Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32} // production
	defer func() { passwd.DefaultParams = saved }()
	e := newEnv(b)
	e.user("bench.user", e.siteHS, admin.RoleTypicalUser)
	ctx := context.Background()
	check := func(err error) {
		if !errors.Is(err, admin.ErrInvalidCredentials) {
			b.Fatalf("answer %v, want invalid credentials", err)
		}
	}
	b.Run("wrong_password", func(b *testing.B) {
		for i := range b.N {
			e.clock.Advance(time.Hour) // past the throttle: measure the answer, not the 429
			_, err := e.svc.LoginFrom(ctx, "bench.user", "Wrong-Guess-99", fmt.Sprintf("198.51.100.%d", i%250))
			check(err)
		}
	})
	b.Run("unknown_user", func(b *testing.B) {
		for range b.N {
			e.clock.Advance(time.Hour)
			_, err := e.svc.LoginFrom(ctx, "no.such.user", "Wrong-Guess-99", "198.51.100.1")
			check(err)
		}
	})
	b.Run("locked_right_password", func(b *testing.B) {
		e.clock.Advance(time.Hour)
		for range 5 {
			_, _ = e.svc.LoginFrom(ctx, "bench.user", "Wrong-Guess-99", "203.0.113.7")
			e.clock.Advance(10 * time.Second)
		}
		b.ResetTimer()
		for range b.N {
			_, err := e.svc.LoginFrom(ctx, "bench.user", goodPassword, "203.0.113.7")
			check(err)
		}
	})
}
