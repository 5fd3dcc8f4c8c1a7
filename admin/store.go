package admin

import (
	"context"
	"time"
)

// Store is what the admin module needs from the database; package store implements it over
// PostgreSQL. Lookups of a missing row return an error matching ErrNotFound; unique violations
// return an error matching ErrAlreadyExists (or a more specific conflict). Times are passed in
// by the Service (its clock), never taken from the database's clock.
type Store interface {
	// Tx runs fn in one transaction with a Store bound to it, committing when fn returns nil.
	// Called on a Store already inside a transaction, it runs fn in a savepoint.
	Tx(ctx context.Context, fn func(tx Store) error) error

	OrgStore
	SiteStore
	UserStore
	AuthStore
	AuditStore
	PatientStore
	SiteInvitationStore
}

// SiteInvitationStore keeps invitations of existing users to sites.
type SiteInvitationStore interface {
	// CreateSiteInvitation stores inv (sets ID), replacing a pending invitation of the same user
	// to the same site.
	CreateSiteInvitation(ctx context.Context, inv *SiteInvitation, invitedBy *int64) error
	// ListSiteInvitations returns the invitations matching f, newest first.
	ListSiteInvitations(ctx context.Context, f SiteInvitationFilter) ([]SiteInvitation, error)
	// AnswerSiteInvitation records the answer of a pending invitation.
	AnswerSiteInvitation(ctx context.Context, id int64, status SiteInvitationStatus, at time.Time) error
}

// OrgStore keeps organizations.
type OrgStore interface {
	CreateOrganization(ctx context.Context, o *Organization) error // sets ID and CreatedAt
	Organization(ctx context.Context, id int64) (*Organization, error)
	OrganizationByCode(ctx context.Context, code string) (*Organization, error)
	ListOrganizations(ctx context.Context) ([]Organization, error)
}

// SiteStore keeps sites, their MSH-4 facility identifiers and sender credentials.
type SiteStore interface {
	// CreateSite inserts the site and its facilities; sets ID, timestamps and HealthSystemID.
	CreateSite(ctx context.Context, s *Site) error
	Site(ctx context.Context, id int64) (*Site, error)
	SiteByCode(ctx context.Context, code string) (*Site, error)
	ListSites(ctx context.Context, f SiteFilter) ([]Site, error)
	// UpdateSiteStatus sets status and go-live date (the zero Date clears it).
	UpdateSiteStatus(ctx context.Context, id int64, status SiteStatus, goLive Date, at time.Time) error
	// AddSiteFacility adds an MSH-4 identifier to a site; adding one the site already has is a
	// no-op (false), one that belongs to another site is a conflict.
	AddSiteFacility(ctx context.Context, siteID int64, facility string) (added bool, err error)
	RemoveSiteFacility(ctx context.Context, siteID int64, facility string) error
	// ActiveAAs locks the site's row and counts its active Access Administrators (for a status
	// change that requires one).
	ActiveAAs(ctx context.Context, siteID int64) (int, error)
	// RefreshSitesAA re-checks the sites (nil: all): a site in testing or production without an
	// active AA is flagged "needs AA" (needs_aa_since = at, when not flagged yet), any other site
	// is cleared. It returns the sites it flagged now and the ids of those it cleared now.
	RefreshSitesAA(ctx context.Context, siteIDs []int64, at time.Time) (flagged []Site, cleared []int64, err error)

	// CreateCredential inserts c (with the password hash for SOAP); sets ID and CreatedAt. A
	// SOAP username already taken is ErrAlreadyExists.
	CreateCredential(ctx context.Context, c *SenderCredential, passwordHash string) error
	// UpdateSOAPCredential replaces the password hash and facility of a SOAP credential and
	// makes it active again.
	UpdateSOAPCredential(ctx context.Context, id int64, passwordHash, facilityID string) error
	Credential(ctx context.Context, id int64) (*SenderCredential, error)
	CredentialByUsername(ctx context.Context, username string) (*SenderCredential, error)
	ListCredentials(ctx context.Context, siteID int64) ([]SenderCredential, error)
	RevokeCredential(ctx context.Context, id int64, at time.Time) error
}

// UserStore keeps users, their site memberships and account state.
type UserStore interface {
	// CreateUser inserts u with its memberships; sets ID and timestamps. A username taken
	// (case-insensitively) is ErrUsernameTaken.
	CreateUser(ctx context.Context, u *User) error
	// User returns the user with memberships; ForUpdate locks the user's row until the end of
	// the transaction.
	User(ctx context.Context, id int64) (*User, error)
	UserForUpdate(ctx context.Context, id int64) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	SearchUsers(ctx context.Context, q UserQuery) ([]UserMatch, error)
	UpdateUserProfile(ctx context.Context, id int64, firstName, lastName, email, phone string, at time.Time) error
	CountRegistryAdmins(ctx context.Context) (int, error)
	// RegistryStaffEmails returns the e-mail addresses of the active registry staff.
	RegistryStaffEmails(ctx context.Context) ([]string, error)

	// SetUserStatus changes the account status. Leaving "active" for a user who is the last
	// active Access Administrator of a site is refused with ErrLastAA; the check is made in the
	// same transaction with the site rows locked. Becoming active sets last_active_at to at.
	SetUserStatus(ctx context.Context, id int64, status UserStatus, at time.Time) error
	// ExpireUser marks an active user Inactive Expired (no AA check: expiry is not a choice).
	ExpireUser(ctx context.Context, id int64, at time.Time) error
	// ExpireInactiveUsers marks Inactive Expired every active user whose last activity is before
	// cutoff, and returns their ids.
	ExpireInactiveUsers(ctx context.Context, cutoff, at time.Time) ([]int64, error)
	// SetPassword stores a new hash; mustChange forces a change at next login.
	SetPassword(ctx context.Context, id int64, hash string, mustChange bool, at time.Time) error
	// AcceptAgreement records the user agreement's acceptance.
	AcceptAgreement(ctx context.Context, id int64, version string, at time.Time) error
	// RecordLoginFailure counts a failed login atomically and locks the account when the count
	// reaches threshold. It returns the new count and whether the account is now locked.
	RecordLoginFailure(ctx context.Context, id int64, threshold int, at time.Time) (failures int, locked bool, err error)
	// RecordLogin resets the failure count and sets last_login_at and last_active_at.
	RecordLogin(ctx context.Context, id int64, at time.Time) error
	// Unlock clears the lock and the failure count.
	Unlock(ctx context.Context, id int64, at time.Time) error

	// PutMembership adds or replaces the user's membership at m.SiteID and returns the previous
	// one (nil when new). Taking the Access Administrator designation away from the site's last
	// active AA is refused with ErrLastAA, checked with the site row locked.
	PutMembership(ctx context.Context, m Membership, at time.Time) (before *Membership, err error)
	// DeleteMembership removes it, with the same last-AA rule.
	DeleteMembership(ctx context.Context, userID, siteID int64) (before *Membership, err error)
}

// AuthStore keeps sessions and invitations; tokens are stored as SHA-256 digests only.
type AuthStore interface {
	CreateSession(ctx context.Context, s *Session, tokenHash []byte) error // sets ID
	// SessionByToken returns the unrevoked session with this token hash that has not expired at
	// time at, or ErrNotFound.
	SessionByToken(ctx context.Context, tokenHash []byte, at time.Time) (*Session, error)
	RevokeSession(ctx context.Context, id int64, at time.Time) error
	// RevokeUserSessions revokes all of a user's sessions except keep (0: all).
	RevokeUserSessions(ctx context.Context, userID, keep int64, at time.Time) error

	// CreateInvite stores a new invitation for the user, invalidating older unused ones.
	CreateInvite(ctx context.Context, inv *Invite, tokenHash []byte) error
	// ConsumeInvite marks the invitation with this token hash used and returns it; an unknown,
	// used or (at time at) expired one is ErrInviteInvalid. Single use holds under concurrency.
	ConsumeInvite(ctx context.Context, tokenHash []byte, at time.Time) (*Invite, error)
	// InviteByToken returns the invitation like ConsumeInvite, without using it.
	InviteByToken(ctx context.Context, tokenHash []byte, at time.Time) (*Invite, error)
	// PurgeExpired deletes sessions and invitations that ended before cutoff.
	PurgeExpired(ctx context.Context, cutoff time.Time) (int64, error)
}

// AuditStore keeps the audit log.
type AuditStore interface {
	AppendAudit(ctx context.Context, e *AuditEntry) error // sets ID
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// PatientStore reads registry patients and records sharing changes (tables of 001_core).
type PatientStore interface {
	// Patient returns the registry patient with all reports, vaccinations and sharing history;
	// the Service filters what the actor may see.
	Patient(ctx context.Context, id int64) (*Patient, error)
	// PatientForUpdate is Patient with the registry patient row locked until the end of the
	// transaction.
	PatientForUpdate(ctx context.Context, id int64) (*Patient, error)
	// SearchPatients finds registry patients by name and birth date, with their reports (no
	// vaccinations).
	SearchPatients(ctx context.Context, q PatientQuery) ([]Patient, error)
	// RecordSharingChange sets the patient's status to c.NewStatus and inserts c into
	// sharing_changes; sets c.ID.
	RecordSharingChange(ctx context.Context, c *SharingChange) error
}
