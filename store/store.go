// Package store is the only package that speaks SQL. It owns the PostgreSQL connection pool, the
// schema migrations (embedded from migrations/*.sql and applied with tern), the batched writer that
// persists ingested messages with group commit, and the queries of the admin module. Other packages
// depend on small interfaces they define themselves; store implements them.
//
// Tests run against a real PostgreSQL: see package store/storetest (for tests of this package, use
// package store_test, since storetest imports store).
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// DB is the application's handle on PostgreSQL.
type DB struct {
	// Pool is exported for the other files of this package and for tests; code outside store does
	// not write SQL.
	Pool *pgxpool.Pool
	log  *zap.Logger
}

// Option configures Open.
type Option func(*options)

type options struct {
	maxConns int32
	logger   *zap.Logger
	appName  string
}

// WithMaxConns sets the pool's maximum number of connections (default: the URL's pool_max_conns,
// else max(8, 4×GOMAXPROCS)).
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithApplicationName sets the application_name the server shows in pg_stat_activity (default
// "vaxgate", unless the URL sets one).
func WithApplicationName(name string) Option { return func(o *options) { o.appName = name } }

// Open connects to the PostgreSQL at url (a postgres:// URL or a key=value DSN) and checks that it
// answers. Errors never contain the password.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	o := options{logger: zap.NewNop(), appName: "vaxgate"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, redact(fmt.Errorf("store: invalid database URL: %w", err), url)
	}
	switch {
	case o.maxConns > 0:
		cfg.MaxConns = o.maxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if !strings.Contains(url, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok && o.appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = o.appName
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("store: open database: %w", err), url)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("store: connect: %w", err), url)
	}
	o.logger.Info("store: connected", zap.String("database", describe(cfg)), zap.Int32("max_conns", cfg.MaxConns))
	return &DB{Pool: pool, log: o.logger}, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() { db.Pool.Close() }

// Ready reports whether the database is reachable and its schema is the one this binary expects;
// it backs /readyz.
func (db *DB) Ready(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: database unreachable: %w", err)
	}
	cur, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	switch {
	case cur < latest:
		return fmt.Errorf("store: database schema is at version %d, this vaxgate needs %d: run vaxgate migrate", cur, latest)
	case cur > latest:
		return fmt.Errorf("store: %w: database schema is at version %d, this vaxgate knows up to %d", ErrSchemaNewer, cur, latest)
	}
	return nil
}

// describe names a database for messages and logs, without credentials: user@host:port/db.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// redactedError replaces an error's text with one scrubbed of the password; errors.Is and As still
// see the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

var (
	kvPassword  = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
)

// redact returns err with every occurrence of the password of connString removed from its text.
// pgx already redacts on a best-effort basis; this is the belt to its braces.
func redact(err error, connString string) error {
	msg := err.Error()
	var secrets []string
	if u, perr := url.Parse(connString); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		secrets = append(secrets, strings.Trim(m[2], "'"))
	}
	for _, m := range urlPassword.FindAllStringSubmatch(connString, -1) {
		secrets = append(secrets, strings.TrimSuffix(strings.TrimPrefix(m[0], m[1]), "@"))
	}
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	msg = kvPassword.ReplaceAllString(msg, "${1}xxxxx")
	msg = urlPassword.ReplaceAllString(msg, "${1}xxxxx@")
	return &redactedError{msg: msg, err: err}
}

// ErrSchemaNewer reports a database migrated by a newer vaxgate than this one.
var ErrSchemaNewer = errors.New("database schema is newer than this vaxgate")
