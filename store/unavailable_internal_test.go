package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// safeErr is an error that happened before anything was sent (pgconn's SafeToRetry).
type safeErr struct{}

func (safeErr) Error() string     { return "not sent" }
func (safeErr) SafeToRetry() bool { return true }

// The writer tells "the database cannot be used now" (hold the records, answer nothing) from "this
// record is bad" (isolate it, answer it): an outage must not be answered AR, and a poison record
// must not hold its batch for the outage wait.
func TestUnavailableClassifies(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("store: queued statement: %w", err) }
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &pgconn.ConnectError{}, true},
		{"connection lost", wrap(io.ErrUnexpectedEOF), true},
		{"connection reset", wrap(&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}), true},
		{"closed connection", wrap(pgconn.ErrConnClosed), true},
		{"timed out", wrap(context.DeadlineExceeded), true},
		{"admin shutdown", wrap(&pgconn.PgError{Code: "57P01"}), true},
		{"crash shutdown", wrap(&pgconn.PgError{Code: "57P02"}), true},
		{"starting up", wrap(&pgconn.PgError{Code: "57P03"}), true},
		{"connection failure", wrap(&pgconn.PgError{Code: "08006"}), true},
		{"too many connections", wrap(&pgconn.PgError{Code: "53300"}), true},
		{"disk full", wrap(&pgconn.PgError{Code: "53100"}), true},
		{"commit outcome unknown", &commitUnknownError{err: io.ErrUnexpectedEOF}, true},
		{"check violation", wrap(&pgconn.PgError{Code: "23514"}), false},
		{"NUL byte in text", wrap(&pgconn.PgError{Code: "22021"}), false},
		{"index row too large", wrap(&pgconn.PgError{Code: "54000"}), false},
		{"unique violation", wrap(&pgconn.PgError{Code: "23505"}), false},
		{"deadlock", wrap(&pgconn.PgError{Code: "40P01"}), false},
		{"a bug", errors.New("store: record was not prechecked"), false},
		{"nil", nil, false},
	} {
		if got := unavailable(c.err); got != c.want {
			t.Errorf("%s: unavailable = %v; want %v", c.name, got, c.want)
		}
	}
}

// A commit's outcome is unknown only when the connection failed after the COMMIT may have been
// sent: an error the server reported, or one before anything was sent, is a sure "not committed".
func TestCommitOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection lost while reading the answers", fmt.Errorf("store: queued statement: %w", io.ErrUnexpectedEOF), true},
		{"timed out waiting for the answer", context.DeadlineExceeded, true},
		{"a statement failed", &pgconn.PgError{Code: "23514"}, false},
		{"the server terminated the session first", &pgconn.PgError{Code: "57P01"}, false},
		{"rolled back", pgx.ErrTxCommitRollback, false},
		{"nothing was sent", safeErr{}, false},
	} {
		if got := commitOutcomeUnknown(c.err); got != c.want {
			t.Errorf("%s: outcome unknown = %v; want %v", c.name, got, c.want)
		}
	}
}
