package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
)

const userColumns = `
	u.id, u.username, u.first_name, u.last_name, u.email, u.phone, coalesce(u.password_hash, ''), u.status,
	u.registry_admin, u.must_change_password, u.failed_logins, u.locked_at, u.last_login_at, u.last_active_at,
	u.agreement_accepted_at, u.agreement_version, u.created_at, u.updated_at`

func scanUser(row pgx.Row) (*admin.User, error) {
	var (
		u      admin.User
		status string
	)
	if err := row.Scan(&u.ID, &u.Username, &u.FirstName, &u.LastName, &u.Email, &u.Phone, &u.PasswordHash, &status,
		&u.RegistryAdmin, &u.MustChangePassword, &u.FailedLogins, &u.LockedAt, &u.LastLoginAt, &u.LastActiveAt,
		&u.AgreementAcceptedAt, &u.AgreementVersion, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	u.Status = admin.UserStatus(status)
	u.Memberships = []admin.Membership{}
	return &u, nil
}

const membershipSelect = `
SELECT us.user_id, us.site_id, s.code, s.organization_id, coalesce(o.parent_id, o.id), us.role, us.designations
FROM user_sites us JOIN sites s ON s.id = us.site_id JOIN organizations o ON o.id = s.organization_id`

func scanMembership(row pgx.Row) (*admin.Membership, error) {
	var (
		m    admin.Membership
		role string
		ds   []string
	)
	if err := row.Scan(&m.UserID, &m.SiteID, &m.SiteCode, &m.OrganizationID, &m.HealthSystemID, &role, &ds); err != nil {
		return nil, err
	}
	m.Role = admin.Role(role)
	m.Designations = make([]admin.Designation, len(ds))
	for i, d := range ds {
		m.Designations[i] = admin.Designation(d)
	}
	return &m, nil
}

func designationStrings(ds []admin.Designation) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}

// loadMemberships fills in the memberships of users.
func (s *AdminStore) loadMemberships(ctx context.Context, users []*admin.User) error {
	if len(users) == 0 {
		return nil
	}
	ids := make([]int64, len(users))
	byID := make(map[int64]*admin.User, len(users))
	for i, u := range users {
		ids[i] = u.ID
		byID[u.ID] = u
	}
	rows, err := s.q.Query(ctx, membershipSelect+` WHERE us.user_id = ANY($1) ORDER BY s.code`, ids)
	if err != nil {
		return admErr(err, "memberships")
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMembership(rows)
		if err != nil {
			return admErr(err, "memberships")
		}
		u := byID[m.UserID]
		u.Memberships = append(u.Memberships, *m)
	}
	return admErr(rows.Err(), "memberships")
}

func (s *AdminStore) oneUser(ctx context.Context, what, where string, args ...any) (*admin.User, error) {
	u, err := scanUser(s.q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where, args...))
	if err != nil {
		return nil, admErr(err, what)
	}
	if err := s.loadMemberships(ctx, []*admin.User{u}); err != nil {
		return nil, err
	}
	return u, nil
}

// CreateUser inserts u and its memberships.
func (s *AdminStore) CreateUser(ctx context.Context, u *admin.User) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		err := t.q.QueryRow(ctx, `
			INSERT INTO users (username, first_name, last_name, email, phone, password_hash, status, registry_admin,
			                   must_change_password, last_active_at, status_changed_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11) RETURNING id`,
			u.Username, u.FirstName, u.LastName, u.Email, u.Phone, nullIfEmpty(u.PasswordHash), string(u.Status),
			u.RegistryAdmin, u.MustChangePassword, u.LastActiveAt, u.CreatedAt).Scan(&u.ID)
		if err != nil {
			return admErr(err, "create user")
		}
		for i := range u.Memberships {
			m := &u.Memberships[i]
			m.UserID = u.ID
			if _, err := t.q.Exec(ctx, `
				INSERT INTO user_sites (user_id, site_id, role, designations, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5)`,
				u.ID, m.SiteID, string(m.Role), designationStrings(m.Designations), u.CreatedAt); err != nil {
				return admErr(err, "create user membership")
			}
		}
		return nil
	}, false)
}

// User returns the user with memberships.
func (s *AdminStore) User(ctx context.Context, id int64) (*admin.User, error) {
	return s.oneUser(ctx, fmt.Sprintf("user %d", id), `u.id = $1`, id)
}

// UserForUpdate is User with the row locked (inside Tx).
func (s *AdminStore) UserForUpdate(ctx context.Context, id int64) (*admin.User, error) {
	return s.oneUser(ctx, fmt.Sprintf("user %d", id), `u.id = $1 FOR UPDATE OF u`, id)
}

// UserByUsername finds a user by username, case-insensitively.
func (s *AdminStore) UserByUsername(ctx context.Context, username string) (*admin.User, error) {
	return s.oneUser(ctx, "user", `lower(u.username) = lower($1)`, username)
}

// ListUsers lists users by username.
func (s *AdminStore) ListUsers(ctx context.Context, f admin.UserFilter) ([]admin.User, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 10000
	}
	rows, err := s.q.Query(ctx, `SELECT `+userColumns+` FROM users u
		WHERE ($1 OR EXISTS (SELECT 1 FROM user_sites us WHERE us.user_id = u.id AND us.site_id = ANY($2)))
		  AND ($3 = '' OR u.status = $3)
		ORDER BY lower(u.username) LIMIT $4`, f.AllSites, f.SiteIDs, string(f.Status), limit)
	if err != nil {
		return nil, admErr(err, "list users")
	}
	var ptrs []*admin.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, admErr(err, "list users")
		}
		ptrs = append(ptrs, u)
	}
	if err := rows.Err(); err != nil {
		return nil, admErr(err, "list users")
	}
	if err := s.loadMemberships(ctx, ptrs); err != nil {
		return nil, err
	}
	out := make([]admin.User, len(ptrs))
	for i, u := range ptrs {
		out[i] = *u
	}
	return out, nil
}

// SearchUsers finds users by email, or by first and last name, case-insensitively.
func (s *AdminStore) SearchUsers(ctx context.Context, q admin.UserQuery) ([]admin.UserMatch, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.q.Query(ctx, `
		SELECT u.id, u.username, u.first_name, u.last_name, u.email, u.status,
		       array(SELECT s.code FROM user_sites us JOIN sites s ON s.id = us.site_id WHERE us.user_id = u.id ORDER BY s.code)
		FROM users u
		WHERE ($1 <> '' AND lower(u.email) = lower($1))
		   OR ($2 <> '' AND $3 <> '' AND lower(u.first_name) = lower($2) AND lower(u.last_name) = lower($3))
		ORDER BY lower(u.username) LIMIT $4`, q.Email, q.FirstName, q.LastName, limit)
	if err != nil {
		return nil, admErr(err, "search users")
	}
	defer rows.Close()
	out := []admin.UserMatch{}
	for rows.Next() {
		var (
			m      admin.UserMatch
			status string
		)
		if err := rows.Scan(&m.ID, &m.Username, &m.FirstName, &m.LastName, &m.Email, &status, &m.SiteCodes); err != nil {
			return nil, admErr(err, "search users")
		}
		m.Status = admin.UserStatus(status)
		out = append(out, m)
	}
	return out, admErr(rows.Err(), "search users")
}

// UpdateUserProfile changes a user's contact details.
func (s *AdminStore) UpdateUserProfile(ctx context.Context, id int64, firstName, lastName, email, phone string, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("update user %d", id), `
		UPDATE users SET first_name = $2, last_name = $3, email = $4, phone = $5, updated_at = $6 WHERE id = $1`,
		id, firstName, lastName, email, phone, at)
}

// exec1 runs a statement that must change exactly one row (else not found).
func (s *AdminStore) exec1(ctx context.Context, what, sql string, args ...any) error {
	tag, err := s.q.Exec(ctx, sql, args...)
	if err != nil {
		return admErr(err, what)
	}
	if tag.RowsAffected() == 0 {
		return admin.NotFound("%s: not found", what)
	}
	return nil
}

// RegistryStaffEmails returns the e-mail addresses of the active registry staff.
func (s *AdminStore) RegistryStaffEmails(ctx context.Context) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT email FROM users WHERE registry_admin AND status = 'active' ORDER BY id`)
	if err != nil {
		return nil, admErr(err, "registry staff e-mails")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, admErr(err, "registry staff e-mails")
}

// CountRegistryAdmins counts registry administrators that are not Inactive Manual.
func (s *AdminStore) CountRegistryAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.q.QueryRow(ctx, `SELECT count(*) FROM users WHERE registry_admin AND status <> 'inactive_manual'`).Scan(&n)
	return n, admErr(err, "count registry administrators")
}

// guardLastAA refuses (admin.ErrLastAA) when the user is, at one of the sites (all the sites
// where they hold the AA designation when sites is nil), the only active Access Administrator
// left. The site rows are locked first, in id order, so that concurrent changes affecting the
// same site's AAs are serialized; the count that follows (READ COMMITTED: a new snapshot per
// statement) sees whatever the transactions that held the lock committed. Callers hold the user's
// row lock, taken before any site lock.
func (s *AdminStore) guardLastAA(ctx context.Context, userID int64, sites []int64) error {
	if sites == nil {
		rows, err := s.q.Query(ctx, `SELECT site_id FROM user_sites
			WHERE user_id = $1 AND 'access_administrator' = ANY (designations) ORDER BY site_id`, userID)
		if err != nil {
			return admErr(err, "access administrator sites")
		}
		sites, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return admErr(err, "access administrator sites")
		}
	}
	if len(sites) == 0 {
		return nil
	}
	if _, err := s.q.Exec(ctx, `SELECT id FROM sites WHERE id = ANY($1) ORDER BY id FOR UPDATE`, sites); err != nil {
		return admErr(err, "lock sites")
	}
	rows, err := s.q.Query(ctx, `
		SELECT s.code FROM sites s
		WHERE s.id = ANY($1) AND NOT EXISTS (
			SELECT 1 FROM user_sites us JOIN users u ON u.id = us.user_id
			WHERE us.site_id = s.id AND us.user_id <> $2 AND u.status = 'active'
			  AND 'access_administrator' = ANY (us.designations))
		ORDER BY s.code`, sites, userID)
	if err != nil {
		return admErr(err, "count access administrators")
	}
	last, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return admErr(err, "count access administrators")
	}
	if len(last) > 0 {
		return admin.ErrLastAA.With("this user is the last active access administrator of site %s: make another user access administrator first",
			strings.Join(last, ", "))
	}
	return nil
}

// registryAdminLockClass and registryAdminLockKey name the advisory lock that serializes
// changes taking a registry administrator out of the active ones (guardLastRegistryAdmin).
const (
	registryAdminLockClass = 0x76617861 // "vaxa"
	registryAdminLockKey   = 1
)

// guardLastRegistryAdmin refuses (admin.ErrLastRegistryAdmin) when the user is the only active
// registry administrator: without one, nobody could manage registry staff or sites from the portal
// again. An advisory lock serializes concurrent deactivations, so that two administrators
// deactivating each other cannot both pass the count: the second counts after the first commits
// (READ COMMITTED: a new snapshot per statement). Callers hold the user's row lock.
func (s *AdminStore) guardLastRegistryAdmin(ctx context.Context, userID int64) error {
	var staff bool
	if err := s.q.QueryRow(ctx, `SELECT registry_admin FROM users WHERE id = $1`, userID).Scan(&staff); err != nil {
		return admErr(err, fmt.Sprintf("user %d", userID))
	}
	if !staff {
		return nil
	}
	if _, err := s.q.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(registryAdminLockClass), int32(registryAdminLockKey)); err != nil {
		return admErr(err, "lock registry administrators")
	}
	var others int
	if err := s.q.QueryRow(ctx, `SELECT count(*) FROM users WHERE registry_admin AND status = 'active' AND id <> $1`,
		userID).Scan(&others); err != nil {
		return admErr(err, "count registry administrators")
	}
	if others == 0 {
		return admin.ErrLastRegistryAdmin.With("this user is the last active registry administrator: invite another registry administrator first")
	}
	return nil
}

// lockUser locks the user's row and returns their status.
func (s *AdminStore) lockUser(ctx context.Context, id int64) (admin.UserStatus, error) {
	var status string
	err := s.q.QueryRow(ctx, `SELECT status FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&status)
	if err != nil {
		return "", admErr(err, fmt.Sprintf("user %d", id))
	}
	return admin.UserStatus(status), nil
}

// SetUserStatus changes a user's status, refusing to deactivate the last active AA of a site.
func (s *AdminStore) SetUserStatus(ctx context.Context, id int64, status admin.UserStatus, at time.Time) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		cur, err := t.lockUser(ctx, id)
		if err != nil {
			return err
		}
		if cur == admin.UserActive && status != admin.UserActive {
			if err := t.guardLastAA(ctx, id, nil); err != nil {
				return err
			}
			if err := t.guardLastRegistryAdmin(ctx, id); err != nil {
				return err
			}
		}
		return t.exec1(ctx, fmt.Sprintf("set status of user %d", id), `
			UPDATE users SET status = $2, status_changed_at = $3, updated_at = $3,
			       last_active_at = CASE WHEN $2 = 'active' THEN $3 ELSE last_active_at END
			WHERE id = $1`, id, string(status), at)
	}, false)
}

// ExpireUser marks an active user Inactive Expired.
func (s *AdminStore) ExpireUser(ctx context.Context, id int64, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("expire user %d", id), `
		UPDATE users SET status = 'inactive_expired', status_changed_at = $2, updated_at = $2
		WHERE id = $1 AND status = 'active'`, id, at)
}

// ExpireInactiveUsers expires every active user inactive since before cutoff.
func (s *AdminStore) ExpireInactiveUsers(ctx context.Context, cutoff, at time.Time) ([]int64, error) {
	rows, err := s.q.Query(ctx, `
		UPDATE users SET status = 'inactive_expired', status_changed_at = $2, updated_at = $2
		WHERE status = 'active' AND coalesce(last_active_at, created_at) < $1
		RETURNING id`, cutoff, at)
	if err != nil {
		return nil, admErr(err, "expire inactive users")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, admErr(err, "expire inactive users")
}

// SetPassword stores a password hash.
func (s *AdminStore) SetPassword(ctx context.Context, id int64, hash string, mustChange bool, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("set password of user %d", id), `
		UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = $4 WHERE id = $1`,
		id, hash, mustChange, at)
}

// AcceptAgreement records the acceptance of the user agreement.
func (s *AdminStore) AcceptAgreement(ctx context.Context, id int64, version string, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("user %d agreement", id), `
		UPDATE users SET agreement_accepted_at = $3, agreement_version = $2, updated_at = $3 WHERE id = $1`,
		id, version, at)
}

// RecordLoginFailure counts a failed login and locks the account at threshold, in one statement.
func (s *AdminStore) RecordLoginFailure(ctx context.Context, id int64, threshold int, at time.Time) (int, bool, error) {
	var (
		n      int
		locked bool
	)
	err := s.q.QueryRow(ctx, `
		UPDATE users SET failed_logins = failed_logins + 1, updated_at = $3,
		       locked_at = CASE WHEN locked_at IS NULL AND failed_logins + 1 >= $2 THEN $3 ELSE locked_at END
		WHERE id = $1 RETURNING failed_logins, locked_at IS NOT NULL`, id, threshold, at).Scan(&n, &locked)
	return n, locked, admErr(err, fmt.Sprintf("login failure of user %d", id))
}

// RecordLogin resets the failure count and records the login as activity.
func (s *AdminStore) RecordLogin(ctx context.Context, id int64, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("login of user %d", id), `
		UPDATE users SET failed_logins = 0, locked_at = NULL, last_login_at = $2, last_active_at = $2, updated_at = $2 WHERE id = $1`, id, at)
}

// Unlock clears the lock.
func (s *AdminStore) Unlock(ctx context.Context, id int64, at time.Time) error {
	return s.exec1(ctx, fmt.Sprintf("unlock user %d", id), `
		UPDATE users SET locked_at = NULL, failed_logins = 0, updated_at = $2 WHERE id = $1`, id, at)
}

func (s *AdminStore) membership(ctx context.Context, userID, siteID int64) (*admin.Membership, error) {
	m, err := scanMembership(s.q.QueryRow(ctx, membershipSelect+` WHERE us.user_id = $1 AND us.site_id = $2 FOR UPDATE OF us`, userID, siteID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return m, admErr(err, "membership")
}

// PutMembership adds or replaces a membership; taking the AA designation from the site's last
// active AA is refused.
func (s *AdminStore) PutMembership(ctx context.Context, m admin.Membership, at time.Time) (*admin.Membership, error) {
	var before *admin.Membership
	err := s.atomic(ctx, func(t *AdminStore) error {
		status, err := t.lockUser(ctx, m.UserID)
		if err != nil {
			return err
		}
		if before, err = t.membership(ctx, m.UserID, m.SiteID); err != nil {
			return err
		}
		if before != nil && before.AccessAdministrator() && !m.AccessAdministrator() && status == admin.UserActive {
			if err := t.guardLastAA(ctx, m.UserID, []int64{m.SiteID}); err != nil {
				return err
			}
		}
		_, err = t.q.Exec(ctx, `
			INSERT INTO user_sites (user_id, site_id, role, designations, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (user_id, site_id) DO UPDATE SET role = $3, designations = $4, updated_at = $5`,
			m.UserID, m.SiteID, string(m.Role), designationStrings(m.Designations), at)
		return admErr(err, "set membership")
	}, false)
	if err != nil {
		return nil, err
	}
	return before, nil
}

// DeleteMembership removes a membership with the same last-AA rule.
func (s *AdminStore) DeleteMembership(ctx context.Context, userID, siteID int64) (*admin.Membership, error) {
	var before *admin.Membership
	err := s.atomic(ctx, func(t *AdminStore) error {
		status, err := t.lockUser(ctx, userID)
		if err != nil {
			return err
		}
		if before, err = t.membership(ctx, userID, siteID); err != nil {
			return err
		}
		if before == nil {
			return admin.NotFound("user %d is not a member of site %d", userID, siteID)
		}
		if before.AccessAdministrator() && status == admin.UserActive {
			if err := t.guardLastAA(ctx, userID, []int64{siteID}); err != nil {
				return err
			}
		}
		return t.exec1(ctx, "remove membership", `DELETE FROM user_sites WHERE user_id = $1 AND site_id = $2`, userID, siteID)
	}, false)
	if err != nil {
		return nil, err
	}
	return before, nil
}

// --- sessions and invitations ---

// CreateSession stores a session by its token digest.
func (s *AdminStore) CreateSession(ctx context.Context, sess *admin.Session, tokenHash []byte) error {
	err := s.q.QueryRow(ctx, `
		INSERT INTO sessions (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		sess.UserID, tokenHash, sess.CreatedAt, sess.ExpiresAt).Scan(&sess.ID)
	return admErr(err, "create session")
}

// SessionByToken finds a live session by token digest.
func (s *AdminStore) SessionByToken(ctx context.Context, tokenHash []byte, at time.Time) (*admin.Session, error) {
	var sess admin.Session
	err := s.q.QueryRow(ctx, `
		SELECT id, user_id, created_at, expires_at FROM sessions
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, tokenHash, at).
		Scan(&sess.ID, &sess.UserID, &sess.CreatedAt, &sess.ExpiresAt)
	if err != nil {
		return nil, admErr(err, "session")
	}
	return &sess, nil
}

// RevokeSession ends a session.
func (s *AdminStore) RevokeSession(ctx context.Context, id int64, at time.Time) error {
	_, err := s.q.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, at)
	return admErr(err, "revoke session")
}

// RevokeUserSessions ends a user's sessions except keep.
func (s *AdminStore) RevokeUserSessions(ctx context.Context, userID, keep int64, at time.Time) error {
	_, err := s.q.Exec(ctx, `UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`,
		userID, keep, at)
	return admErr(err, "revoke sessions")
}

// CreateInvite stores an invitation and ends the user's older unused ones.
func (s *AdminStore) CreateInvite(ctx context.Context, inv *admin.Invite, tokenHash []byte) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		if _, err := t.q.Exec(ctx, `UPDATE user_invites SET expires_at = least(expires_at, $2)
			WHERE user_id = $1 AND used_at IS NULL`, inv.UserID, inv.CreatedAt); err != nil {
			return admErr(err, "end older invitations")
		}
		var site any
		if inv.SiteID != 0 {
			site = inv.SiteID
		}
		err := t.q.QueryRow(ctx, `
			INSERT INTO user_invites (user_id, site_id, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			inv.UserID, site, tokenHash, inv.CreatedAt, inv.ExpiresAt).Scan(&inv.ID)
		return admErr(err, "create invitation")
	}, false)
}

// ConsumeInvite uses an invitation once: the UPDATE's row lock makes a concurrent second use
// find it used.
func (s *AdminStore) ConsumeInvite(ctx context.Context, tokenHash []byte, at time.Time) (*admin.Invite, error) {
	var inv admin.Invite
	err := s.q.QueryRow(ctx, `
		UPDATE user_invites SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING id, user_id, coalesce(site_id, 0), created_at, expires_at`, tokenHash, at).
		Scan(&inv.ID, &inv.UserID, &inv.SiteID, &inv.CreatedAt, &inv.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, admin.ErrInviteInvalid
	}
	if err != nil {
		return nil, admErr(err, "use invitation")
	}
	return &inv, nil
}

// PurgeExpired deletes sessions and invitations that ended before cutoff.
func (s *AdminStore) PurgeExpired(ctx context.Context, cutoff time.Time) (int64, error) {
	a, err := s.q.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, cutoff)
	if err != nil {
		return 0, admErr(err, "purge sessions")
	}
	b, err := s.q.Exec(ctx, `DELETE FROM user_invites WHERE expires_at < $1 OR used_at < $1`, cutoff)
	if err != nil {
		return 0, admErr(err, "purge invitations")
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}
