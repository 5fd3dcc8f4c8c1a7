package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaxgate/vaxgate/admin"
)

// AdminStore implements admin.Store: organizations, sites, sender credentials, users, sessions,
// invitations, the audit log, and the admin module's reads and sharing changes of registry
// patients. Its zero value is not usable: get one from NewAdminStore.
type AdminStore struct {
	pool *pgxpool.Pool
	q    adminQuerier // the pool, or the transaction of Tx
	tx   pgx.Tx       // nil outside Tx
}

var _ admin.Store = (*AdminStore)(nil)

// adminQuerier is what pgxpool.Pool and pgx.Tx have in common.
type adminQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NewAdminStore returns the admin module's store over db.
func NewAdminStore(db *DB) *AdminStore {
	return &AdminStore{pool: db.Pool, q: db.Pool}
}

// Tx runs fn in a transaction (a savepoint when already in one).
func (s *AdminStore) Tx(ctx context.Context, fn func(tx admin.Store) error) error {
	return s.atomic(ctx, func(t *AdminStore) error { return fn(t) }, true)
}

// atomic runs fn in a transaction: a new one outside Tx, the current one inside (or a savepoint
// when nested is set). Methods that lock rows use it, so they are safe when called outside Tx.
func (s *AdminStore) atomic(ctx context.Context, fn func(t *AdminStore) error, nested bool) error {
	if s.tx != nil && !nested {
		return fn(s)
	}
	var (
		tx  pgx.Tx
		err error
	)
	if s.tx != nil {
		tx, err = s.tx.Begin(ctx)
	} else {
		tx, err = s.pool.Begin(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: admin: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(&AdminStore{pool: s.pool, q: tx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: admin: commit: %w", err)
	}
	return nil
}

// admErr maps database errors to the admin module's errors: no rows → not found, unique
// violations → conflicts, check violations → invalid input; anything else is wrapped with what
// was being done.
func admErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return admin.NotFound("%s not found", what)
	}
	var ae *admin.Error
	if errors.As(err, &ae) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505": // unique_violation
			switch pg.ConstraintName {
			case "users_username", "users_username_folded":
				return admin.ErrUsernameTaken.Wrap(err, "%s: the username is taken (usernames compare regardless of case and of . _ -)", what)
			case "users_email":
				return admin.ErrDuplicateUser.Wrap(err, "%s: a user with this email exists", what)
			case "site_facilities_pkey":
				return admin.Conflict("facility_taken", "%s: the facility identifier belongs to another site", what)
			}
			return admin.ErrAlreadyExists.Wrap(err, "%s: already exists", what)
		case "23503": // foreign_key_violation
			return admin.NotFound("%s: a referenced row does not exist", what)
		case "23514", "22P02", "22007", "22008": // check_violation, invalid text representation, datetime
			return admin.Invalid("%s: invalid value (%s)", what, pg.Message)
		}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// dateArg is a date parameter: NULL for the zero Date.
func dateArg(d admin.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.Time()
}

func dateOf(t *time.Time) admin.Date {
	if t == nil {
		return admin.Date{}
	}
	return admin.DateOf(*t)
}

func nullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// --- organizations ---

const orgColumns = `id, code, name, parent_id, created_at`

func scanOrg(row pgx.Row) (*admin.Organization, error) {
	var o admin.Organization
	if err := row.Scan(&o.ID, &o.Code, &o.Name, &o.ParentID, &o.CreatedAt); err != nil {
		return nil, err
	}
	return &o, nil
}

// CreateOrganization inserts o.
func (s *AdminStore) CreateOrganization(ctx context.Context, o *admin.Organization) error {
	err := s.q.QueryRow(ctx,
		`INSERT INTO organizations (code, name, parent_id) VALUES ($1, $2, $3) RETURNING id, created_at`,
		o.Code, o.Name, o.ParentID).Scan(&o.ID, &o.CreatedAt)
	return admErr(err, "create organization")
}

// Organization returns the organization with this id.
func (s *AdminStore) Organization(ctx context.Context, id int64) (*admin.Organization, error) {
	o, err := scanOrg(s.q.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id))
	return o, admErr(err, fmt.Sprintf("organization %d", id))
}

// OrganizationByCode returns the organization with this code.
func (s *AdminStore) OrganizationByCode(ctx context.Context, code string) (*admin.Organization, error) {
	o, err := scanOrg(s.q.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE code = $1`, code))
	return o, admErr(err, fmt.Sprintf("organization %q", code))
}

// ListOrganizations lists all organizations by code.
func (s *AdminStore) ListOrganizations(ctx context.Context) ([]admin.Organization, error) {
	rows, err := s.q.Query(ctx, `SELECT `+orgColumns+` FROM organizations ORDER BY code`)
	if err != nil {
		return nil, admErr(err, "list organizations")
	}
	out := []admin.Organization{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			rows.Close()
			return nil, admErr(err, "list organizations")
		}
		out = append(out, *o)
	}
	return out, admErr(rows.Err(), "list organizations")
}

// --- sites ---

const siteSelect = `
SELECT s.id, s.organization_id, o.code, coalesce(o.parent_id, o.id), s.code, s.name, s.status,
       s.go_live_date, s.created_at, s.updated_at,
       array(SELECT f.facility_id FROM site_facilities f WHERE f.site_id = s.id ORDER BY f.facility_id), s.needs_aa_since
FROM sites s JOIN organizations o ON o.id = s.organization_id`

func scanSite(row pgx.Row) (*admin.Site, error) {
	var (
		st     admin.Site
		status string
		goLive *time.Time
	)
	if err := row.Scan(&st.ID, &st.OrganizationID, &st.OrganizationCode, &st.HealthSystemID, &st.Code, &st.Name,
		&status, &goLive, &st.CreatedAt, &st.UpdatedAt, &st.Facilities, &st.NeedsAASince); err != nil {
		return nil, err
	}
	st.NeedsAA = st.NeedsAASince != nil
	st.Status = admin.SiteStatus(status)
	st.GoLive = dateOf(goLive)
	if st.Facilities == nil {
		st.Facilities = []string{}
	}
	return &st, nil
}

// CreateSite inserts the site and its facilities.
func (s *AdminStore) CreateSite(ctx context.Context, st *admin.Site) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		err := t.q.QueryRow(ctx, `
			INSERT INTO sites (organization_id, code, name, status, go_live_date)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			st.OrganizationID, st.Code, st.Name, string(st.Status), dateArg(st.GoLive)).Scan(&st.ID)
		if err != nil {
			return admErr(err, fmt.Sprintf("create site %s", st.Code))
		}
		for _, f := range st.Facilities {
			if _, err := t.AddSiteFacility(ctx, st.ID, f); err != nil {
				return err
			}
		}
		got, err := t.Site(ctx, st.ID)
		if err != nil {
			return err
		}
		*st = *got
		return nil
	}, false)
}

// Site returns the site with this id.
func (s *AdminStore) Site(ctx context.Context, id int64) (*admin.Site, error) {
	st, err := scanSite(s.q.QueryRow(ctx, siteSelect+` WHERE s.id = $1`, id))
	return st, admErr(err, fmt.Sprintf("site %d", id))
}

// SiteByCode returns the site with this code.
func (s *AdminStore) SiteByCode(ctx context.Context, code string) (*admin.Site, error) {
	st, err := scanSite(s.q.QueryRow(ctx, siteSelect+` WHERE s.code = $1`, code))
	return st, admErr(err, fmt.Sprintf("site %q", code))
}

// ListSites lists the sites matching f by code.
func (s *AdminStore) ListSites(ctx context.Context, f admin.SiteFilter) ([]admin.Site, error) {
	rows, err := s.q.Query(ctx, siteSelect+`
		WHERE ($1::bigint[] IS NULL OR s.id = ANY($1))
		  AND ($2 = 0 OR s.organization_id = $2)
		  AND ($3 = 0 OR coalesce(o.parent_id, o.id) = $3)
		  AND ($4 = '' OR s.status = $4)
		  AND (NOT $5 OR s.needs_aa_since IS NOT NULL)
		ORDER BY s.code`, f.IDs, f.OrganizationID, f.HealthSystemID, string(f.Status), f.NeedsAA)
	if err != nil {
		return nil, admErr(err, "list sites")
	}
	out := []admin.Site{}
	for rows.Next() {
		st, err := scanSite(rows)
		if err != nil {
			rows.Close()
			return nil, admErr(err, "list sites")
		}
		out = append(out, *st)
	}
	return out, admErr(rows.Err(), "list sites")
}

// UpdateSiteStatus sets status and go-live date.
func (s *AdminStore) UpdateSiteStatus(ctx context.Context, id int64, status admin.SiteStatus, goLive admin.Date, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE sites SET status = $2, go_live_date = $3, updated_at = $4 WHERE id = $1`,
		id, string(status), dateArg(goLive), at)
	if err != nil {
		return admErr(err, fmt.Sprintf("update site %d", id))
	}
	if tag.RowsAffected() == 0 {
		return admin.NotFound("site %d not found", id)
	}
	return nil
}

// activeAA is the SQL condition "site s has an active Access Administrator".
const activeAA = `EXISTS (SELECT 1 FROM user_sites us JOIN users u ON u.id = us.user_id
	WHERE us.site_id = s.id AND u.status = 'active' AND 'access_administrator' = ANY (us.designations))`

// ActiveAAs locks the site's row and counts its active Access Administrators. The lock
// serializes it with the last-AA guard of user changes (guardLastAA locks the same row).
func (s *AdminStore) ActiveAAs(ctx context.Context, siteID int64) (int, error) {
	var n int
	err := s.atomic(ctx, func(t *AdminStore) error {
		var id int64
		if err := t.q.QueryRow(ctx, `SELECT id FROM sites WHERE id = $1 FOR UPDATE`, siteID).Scan(&id); err != nil {
			return admErr(err, fmt.Sprintf("site %d", siteID))
		}
		err := t.q.QueryRow(ctx, `SELECT count(*) FROM user_sites us JOIN users u ON u.id = us.user_id
			WHERE us.site_id = $1 AND u.status = 'active' AND 'access_administrator' = ANY (us.designations)`, siteID).Scan(&n)
		return admErr(err, "count access administrators")
	}, false)
	return n, err
}

// RefreshSitesAA flags sites in testing or production without an active AA and clears the
// others, in one statement per direction.
func (s *AdminStore) RefreshSitesAA(ctx context.Context, siteIDs []int64, at time.Time) ([]admin.Site, []int64, error) {
	var (
		flagged []admin.Site
		cleared []int64
	)
	err := s.atomic(ctx, func(t *AdminStore) error {
		rows, err := t.q.Query(ctx, `
			UPDATE sites s SET needs_aa_since = $2
			WHERE ($1::bigint[] IS NULL OR s.id = ANY($1)) AND s.needs_aa_since IS NULL
			  AND s.status IN ('testing', 'production') AND NOT `+activeAA+`
			RETURNING s.id`, siteIDs, at)
		if err != nil {
			return admErr(err, "flag sites without access administrator")
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return admErr(err, "flag sites without access administrator")
		}
		if len(ids) > 0 {
			if flagged, err = t.ListSites(ctx, admin.SiteFilter{IDs: ids}); err != nil {
				return err
			}
		}
		rows, err = t.q.Query(ctx, `
			UPDATE sites s SET needs_aa_since = NULL
			WHERE ($1::bigint[] IS NULL OR s.id = ANY($1)) AND s.needs_aa_since IS NOT NULL
			  AND (s.status = 'registered' OR `+activeAA+`)
			RETURNING s.id`, siteIDs)
		if err != nil {
			return admErr(err, "clear sites with access administrator")
		}
		cleared, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return admErr(err, "clear sites with access administrator")
	}, false)
	return flagged, cleared, err
}

// AddSiteFacility adds an MSH-4 identifier to a site.
func (s *AdminStore) AddSiteFacility(ctx context.Context, siteID int64, facility string) (bool, error) {
	var owner int64
	err := s.q.QueryRow(ctx, `
		INSERT INTO site_facilities (facility_id, site_id) VALUES ($1, $2)
		ON CONFLICT (facility_id) DO NOTHING RETURNING site_id`, facility, siteID).Scan(&owner)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, admErr(err, fmt.Sprintf("add facility to site %d", siteID))
	}
	var code string
	err = s.q.QueryRow(ctx, `SELECT f.site_id, s.code FROM site_facilities f JOIN sites s ON s.id = f.site_id WHERE f.facility_id = $1`,
		facility).Scan(&owner, &code)
	if err != nil {
		return false, admErr(err, fmt.Sprintf("facility %q", facility))
	}
	if owner != siteID {
		return false, admin.Conflict("facility_taken", "facility identifier %q belongs to site %s", facility, code)
	}
	return false, nil
}

// RemoveSiteFacility removes an MSH-4 identifier from a site.
func (s *AdminStore) RemoveSiteFacility(ctx context.Context, siteID int64, facility string) error {
	tag, err := s.q.Exec(ctx, `DELETE FROM site_facilities WHERE site_id = $1 AND facility_id = $2`, siteID, facility)
	if err != nil {
		return admErr(err, "remove facility")
	}
	if tag.RowsAffected() == 0 {
		return admin.NotFound("site %d has no facility identifier %q", siteID, facility)
	}
	return nil
}

// --- sender credentials ---

const credSelect = `
SELECT c.id, c.site_id, s.code, c.transport, coalesce(c.username, ''), coalesce(c.facility_id, ''),
       coalesce(c.cert_subject, ''), coalesce(c.source_cidr::text, ''), c.active, c.created_at, c.revoked_at
FROM sender_credentials c JOIN sites s ON s.id = c.site_id`

func scanCred(row pgx.Row) (*admin.SenderCredential, error) {
	var (
		c         admin.SenderCredential
		transport string
	)
	if err := row.Scan(&c.ID, &c.SiteID, &c.SiteCode, &transport, &c.Username, &c.FacilityID,
		&c.CertSubject, &c.SourceCIDR, &c.Active, &c.CreatedAt, &c.RevokedAt); err != nil {
		return nil, err
	}
	c.Transport = admin.Transport(transport)
	return &c, nil
}

// CreateCredential inserts a sender credential. Absent fields are stored as NULL, which the
// transports' lookups rely on.
func (s *AdminStore) CreateCredential(ctx context.Context, c *admin.SenderCredential, passwordHash string) error {
	err := s.q.QueryRow(ctx, `
		INSERT INTO sender_credentials (site_id, transport, username, password_hash, facility_id, cert_subject, source_cidr, active)
		VALUES ($1, $2, $3, $4, $5, $6, $7::cidr, true) RETURNING id, created_at`,
		c.SiteID, string(c.Transport), nullIfEmpty(c.Username), nullIfEmpty(passwordHash), nullIfEmpty(c.FacilityID),
		nullIfEmpty(c.CertSubject), nullIfEmpty(c.SourceCIDR)).Scan(&c.ID, &c.CreatedAt)
	return admErr(err, "create sender credential")
}

// UpdateSOAPCredential replaces a SOAP credential's password hash and facility and reactivates it.
func (s *AdminStore) UpdateSOAPCredential(ctx context.Context, id int64, passwordHash, facilityID string) error {
	tag, err := s.q.Exec(ctx, `
		UPDATE sender_credentials SET password_hash = $2, facility_id = $3, active = true, revoked_at = NULL
		WHERE id = $1 AND transport = 'soap'`, id, passwordHash, nullIfEmpty(facilityID))
	if err != nil {
		return admErr(err, "update sender credential")
	}
	if tag.RowsAffected() == 0 {
		return admin.NotFound("SOAP credential %d not found", id)
	}
	return nil
}

// Credential returns the credential with this id.
func (s *AdminStore) Credential(ctx context.Context, id int64) (*admin.SenderCredential, error) {
	c, err := scanCred(s.q.QueryRow(ctx, credSelect+` WHERE c.id = $1`, id))
	return c, admErr(err, fmt.Sprintf("sender credential %d", id))
}

// CredentialByUsername returns the SOAP credential with this username (active or not).
func (s *AdminStore) CredentialByUsername(ctx context.Context, username string) (*admin.SenderCredential, error) {
	c, err := scanCred(s.q.QueryRow(ctx, credSelect+` WHERE c.username = $1`, username))
	return c, admErr(err, fmt.Sprintf("sender credential %q", username))
}

// ListCredentials lists a site's credentials (all sites for siteID 0).
func (s *AdminStore) ListCredentials(ctx context.Context, siteID int64) ([]admin.SenderCredential, error) {
	rows, err := s.q.Query(ctx, credSelect+` WHERE ($1 = 0 OR c.site_id = $1) ORDER BY s.code, c.id`, siteID)
	if err != nil {
		return nil, admErr(err, "list sender credentials")
	}
	out := []admin.SenderCredential{}
	for rows.Next() {
		c, err := scanCred(rows)
		if err != nil {
			rows.Close()
			return nil, admErr(err, "list sender credentials")
		}
		out = append(out, *c)
	}
	return out, admErr(rows.Err(), "list sender credentials")
}

// RevokeCredential deactivates a credential.
func (s *AdminStore) RevokeCredential(ctx context.Context, id int64, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE sender_credentials SET active = false, revoked_at = $2 WHERE id = $1`, id, at)
	if err != nil {
		return admErr(err, "revoke sender credential")
	}
	if tag.RowsAffected() == 0 {
		return admin.NotFound("sender credential %d not found", id)
	}
	return nil
}
