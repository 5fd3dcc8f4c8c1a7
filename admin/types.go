package admin

import (
	"encoding/json"
	"strings"
	"time"
)

// Date is a calendar date without time of day or zone; JSON "2006-01-02". The zero Date is
// "no date".
type Date struct{ t time.Time }

// DateOf returns the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate reads "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, Invalid("date %q is not a date (want YYYY-MM-DD)", s)
	}
	return Date{t}, nil
}

// Time is the date at midnight UTC.
func (d Date) Time() time.Time { return d.t }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d.t.IsZero() }

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.t.Before(e.t) }

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.t.Format(time.DateOnly)
}

// MarshalJSON writes "2006-01-02", or null for the zero Date.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads "2006-01-02" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Invalid("date must be a string YYYY-MM-DD")
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Organization is a registered organization; a health system is a parent organization with
// child organizations (two levels).
type Organization struct {
	ID        int64     `json:"id"`
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	ParentID  *int64    `json:"parent_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// HealthSystemID is the id of the top organization of o's health system (o itself when it has no
// parent).
func (o *Organization) HealthSystemID() int64 {
	if o.ParentID != nil {
		return *o.ParentID
	}
	return o.ID
}

// SiteStatus is a site's onboarding status.
type SiteStatus string

// Onboarding statuses, in order.
const (
	SiteRegistered SiteStatus = "registered"
	SiteTesting    SiteStatus = "testing"
	SiteProduction SiteStatus = "production"
)

// Valid reports whether s is a known status.
func (s SiteStatus) Valid() bool {
	return s == SiteRegistered || s == SiteTesting || s == SiteProduction
}

// CanMoveTo reports whether a site may go from s to t: forward one step (registered → testing →
// production), or back one step (production → testing for re-certification, testing →
// registered).
func (s SiteStatus) CanMoveTo(t SiteStatus) bool {
	switch s {
	case SiteRegistered:
		return t == SiteTesting
	case SiteTesting:
		return t == SiteProduction || t == SiteRegistered
	case SiteProduction:
		return t == SiteTesting
	}
	return false
}

// Site is a place that reports immunizations: it belongs to an organization, has an onboarding
// status and go-live date, and the MSH-4 sending facility identifiers its sender credentials may
// send for.
type Site struct {
	ID               int64      `json:"id"`
	OrganizationID   int64      `json:"organization_id"`
	OrganizationCode string     `json:"organization_code"`
	HealthSystemID   int64      `json:"health_system_id"` // top organization of the site's health system
	Code             string     `json:"code"`
	Name             string     `json:"name"`
	Status           SiteStatus `json:"status"`
	GoLive           Date       `json:"go_live_date"`
	Facilities       []string   `json:"facilities"`
	// NeedsAA is set while the site is in testing or production without an active Access
	// Administrator (since NeedsAASince); registry staff were told.
	NeedsAA      bool       `json:"needs_access_administrator"`
	NeedsAASince *time.Time `json:"needs_access_administrator_since,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Transport names how a sender credential authenticates.
type Transport string

// Sender transports.
const (
	TransportSOAP Transport = "soap"
	TransportMLLP Transport = "mllp"
)

// SenderCredential is how an EHR system proves it sends for a site: a SOAP username/password/
// facilityID, or over MLLP a TLS client certificate subject and/or a source address range. A
// credential covers the MSH-4 identifiers of its site (Site.Facilities). The password is never
// returned: only its argon2id hash is stored.
type SenderCredential struct {
	ID          int64      `json:"id"`
	SiteID      int64      `json:"site_id"`
	SiteCode    string     `json:"site_code"`
	Transport   Transport  `json:"transport"`
	Username    string     `json:"username,omitempty"`
	FacilityID  string     `json:"facility_id,omitempty"`
	CertSubject string     `json:"cert_subject,omitempty"`
	SourceCIDR  string     `json:"source_cidr,omitempty"`
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Role is a user's role at a site (MIIC roles).
type Role string

// The roles.
const (
	RoleReadOnly                 Role = "read_only"
	RoleTypicalUser              Role = "typical_user"
	RoleTypicalUserOrdering      Role = "typical_user_ordering"
	RoleReadOnlyAdministrator    Role = "read_only_administrator"
	RoleAdministrator            Role = "administrator"
	RoleAdministratorOrdering    Role = "administrator_ordering"
	RoleHealthSystemUser         Role = "health_system_user"
	RoleHealthSystemUserOrdering Role = "health_system_user_ordering"
)

// Roles lists every role, least privileged first.
var Roles = []Role{
	RoleReadOnly, RoleTypicalUser, RoleTypicalUserOrdering, RoleReadOnlyAdministrator,
	RoleAdministrator, RoleAdministratorOrdering, RoleHealthSystemUser, RoleHealthSystemUserOrdering,
}

var roleLabels = map[Role]string{
	RoleReadOnly:                 "Read Only",
	RoleTypicalUser:              "Typical User",
	RoleTypicalUserOrdering:      "Typical User with Ordering",
	RoleReadOnlyAdministrator:    "Read Only Administrator",
	RoleAdministrator:            "Administrator",
	RoleAdministratorOrdering:    "Administrator with Ordering",
	RoleHealthSystemUser:         "Health System User",
	RoleHealthSystemUserOrdering: "Health System User with Ordering",
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { _, ok := roleLabels[r]; return ok }

// Label is the role's name as the registries write it.
func (r Role) Label() string { return roleLabels[r] }

// Ordering reports whether the role includes vaccine ordering.
func (r Role) Ordering() bool { return strings.HasSuffix(string(r), "_ordering") }

// HealthSystem reports whether the role's rights extend to the whole health system.
func (r Role) HealthSystem() bool {
	return r == RoleHealthSystemUser || r == RoleHealthSystemUserOrdering
}

// Permission is something a role allows at a site.
type Permission int

// The permissions.
const (
	PermReadPatients  Permission = iota // look up patients and their vaccinations
	PermChangeSharing                   // change a patient's data-sharing status
	PermViewUsers                       // list the site's users, its sender credentials and audit log
	PermManageUsers                     // invite, edit roles, deactivate, reactivate, unlock, reset password (within the scope rules of authz.go)
)

// Can reports whether r allows p.
func (r Role) Can(p Permission) bool {
	switch p {
	case PermReadPatients:
		return r.Valid()
	case PermChangeSharing:
		return r.Valid() && r != RoleReadOnly && r != RoleReadOnlyAdministrator
	case PermViewUsers:
		return r == RoleReadOnlyAdministrator || r.Can(PermManageUsers)
	case PermManageUsers:
		return r == RoleReadOnlyAdministrator || r == RoleAdministrator || r == RoleAdministratorOrdering || r.HealthSystem()
	}
	return false
}

// Designation is an MIIS designation of a user at a site.
type Designation string

// The designations.
const (
	DesignationAccessAdministrator  Designation = "access_administrator"
	DesignationSupervisingPhysician Designation = "supervising_physician" // Supervising Physician/Site Manager/Designee
	DesignationTechnicalContact     Designation = "technical_contact"
	DesignationClinicalChampion     Designation = "clinical_champion"
	DesignationIncentiveContact     Designation = "incentive_program_contact"
)

var designationLabels = map[Designation]string{
	DesignationAccessAdministrator:  "Access Administrator",
	DesignationSupervisingPhysician: "Supervising Physician/Site Manager/Designee",
	DesignationTechnicalContact:     "Technical Contact",
	DesignationClinicalChampion:     "Clinical Champion",
	DesignationIncentiveContact:     "Incentive Program Contact",
}

// Designations lists every designation.
var Designations = []Designation{
	DesignationAccessAdministrator, DesignationSupervisingPhysician, DesignationTechnicalContact,
	DesignationClinicalChampion, DesignationIncentiveContact,
}

// Valid reports whether d is a known designation.
func (d Designation) Valid() bool { _, ok := designationLabels[d]; return ok }

// Label is the designation's name as MIIS writes it.
func (d Designation) Label() string { return designationLabels[d] }

// Membership is a user's role and designations at one site.
type Membership struct {
	UserID         int64         `json:"user_id"`
	SiteID         int64         `json:"site_id"`
	SiteCode       string        `json:"site_code"`
	OrganizationID int64         `json:"organization_id"`
	HealthSystemID int64         `json:"health_system_id"`
	Role           Role          `json:"role"`
	Designations   []Designation `json:"designations"`
}

// Has reports whether m has designation d.
func (m *Membership) Has(d Designation) bool {
	for _, x := range m.Designations {
		if x == d {
			return true
		}
	}
	return false
}

// AccessAdministrator reports whether m is an Access Administrator of its site.
func (m *Membership) AccessAdministrator() bool { return m.Has(DesignationAccessAdministrator) }

// UserStatus is a user account's status.
type UserStatus string

// The account statuses.
const (
	UserInvited         UserStatus = "invited"          // invited; registration not completed
	UserActive          UserStatus = "active"           // may log in
	UserInactiveManual  UserStatus = "inactive_manual"  // "Inactive Manual": deactivated by an administrator
	UserInactiveExpired UserStatus = "inactive_expired" // "Inactive Expired": unused for the inactivity period
)

// Valid reports whether s is a known status.
func (s UserStatus) Valid() bool {
	return s == UserInvited || s == UserActive || s == UserInactiveManual || s == UserInactiveExpired
}

// Label is the status as the registries write it.
func (s UserStatus) Label() string {
	switch s {
	case UserInvited:
		return "Invited"
	case UserActive:
		return "Active"
	case UserInactiveManual:
		return "Inactive Manual"
	case UserInactiveExpired:
		return "Inactive Expired"
	}
	return string(s)
}

// User is a person with an account. Accounts are personal: no shared or generic usernames.
type User struct {
	ID                  int64        `json:"id"`
	Username            string       `json:"username"`
	FirstName           string       `json:"first_name"`
	LastName            string       `json:"last_name"`
	Email               string       `json:"email"`
	Phone               string       `json:"phone"`
	Status              UserStatus   `json:"status"`
	RegistryAdmin       bool         `json:"registry_admin"`
	MustChangePassword  bool         `json:"must_change_password"`
	FailedLogins        int          `json:"failed_logins"`
	LockedAt            *time.Time   `json:"locked_at,omitempty"`
	LastLoginAt         *time.Time   `json:"last_login_at,omitempty"`
	LastActiveAt        *time.Time   `json:"last_active_at,omitempty"`
	AgreementAcceptedAt *time.Time   `json:"agreement_accepted_at,omitempty"`
	AgreementVersion    string       `json:"agreement_version,omitempty"`
	CreatedAt           time.Time    `json:"created_at"`
	UpdatedAt           time.Time    `json:"updated_at"`
	Memberships         []Membership `json:"memberships"`

	PasswordHash string `json:"-"`
}

// Locked reports whether the account is locked after failed logins: LockoutThreshold failures in a
// row, until a successful login or an administrator's unlock. Administrators see it; a login
// caller never does (see throttle.go: the addresses that failed may not log in for LockDuration,
// and are answered as for a wrong password).
func (u *User) Locked() bool { return u.LockedAt != nil }

// MarshalJSON adds the derived "locked" flag.
func (u User) MarshalJSON() ([]byte, error) {
	type plain User
	if u.Memberships == nil {
		u.Memberships = []Membership{}
	}
	return json.Marshal(struct {
		plain
		Locked bool `json:"locked"`
	}{plain(u), u.Locked()})
}

// Membership returns u's membership at site, or nil.
func (u *User) Membership(siteID int64) *Membership {
	for i := range u.Memberships {
		if u.Memberships[i].SiteID == siteID {
			return &u.Memberships[i]
		}
	}
	return nil
}

// UserMatch is a user found by the duplicate search before an invitation: enough to recognise
// the person, nothing more.
type UserMatch struct {
	ID        int64      `json:"id"`
	Username  string     `json:"username"`
	FirstName string     `json:"first_name"`
	LastName  string     `json:"last_name"`
	Email     string     `json:"email"`
	Status    UserStatus `json:"status"`
	SiteCodes []string   `json:"site_codes"`
}

// Session is an authenticated API session. The token itself is only known to the client; the
// store keeps its SHA-256.
type Session struct {
	ID        int64     `json:"-"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Invite is a pending registration: a single-use token (stored hashed) that expires.
type Invite struct {
	ID        int64
	UserID    int64
	SiteID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuditEntry records one admin action or data-sharing change: who, what, when, before and after.
// It never holds passwords, tokens or patient demographics.
type AuditEntry struct {
	ID          int64           `json:"id"`
	At          time.Time       `json:"at"`
	ActorUserID *int64          `json:"actor_user_id,omitempty"`
	Actor       string          `json:"actor"` // username, or "system:<tool>"
	Action      string          `json:"action"`
	Rule        string          `json:"rule,omitempty"` // the authorization rule that allowed it
	TargetType  string          `json:"target_type"`
	TargetID    string          `json:"target_id"`
	SiteIDs     []int64         `json:"site_ids"`
	Before      json.RawMessage `json:"before,omitempty"`
	After       json.RawMessage `json:"after,omitempty"`
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	SiteIDs     []int64 // entries touching any of these sites; nil: all
	AllSites    bool    // no site restriction (registry administrators)
	Action      string  // exact action, or a prefix ending in "." (e.g. "user.")
	TargetType  string
	TargetID    string
	ActorUserID int64
	Since       time.Time
	Until       time.Time
	BeforeID    int64 // paging: entries with id < BeforeID
	Limit       int
}

// Sharing is a registry patient's data-sharing status.
type Sharing string

// The data-sharing statuses.
const (
	SharingYes     Sharing = "Y"
	SharingNo      Sharing = "N"
	SharingUnknown Sharing = "U"
)

// Valid reports whether s is Y, N or U.
func (s Sharing) Valid() bool { return s == SharingYes || s == SharingNo || s == SharingUnknown }

// Patient is a registry patient as the admin module shows it: the registry-level demographics,
// the reports of each organization that sent the patient, the vaccinations and the sharing history.
type Patient struct {
	ID           int64           `json:"id"`
	Env          string          `json:"env"`
	Sharing      Sharing         `json:"sharing"`
	FamilyName   string          `json:"family_name"`
	GivenName    string          `json:"given_name"`
	MiddleName   string          `json:"middle_name"`
	BirthDate    Date            `json:"birth_date"`
	Sex          string          `json:"sex"`
	Reports      []PatientReport `json:"reports"`
	Vaccinations []Vaccination   `json:"vaccinations"`
	History      []SharingChange `json:"sharing_history"`
}

// PatientReport is one organization's record of the patient (PID-3 identity and demographics).
type PatientReport struct {
	ID               int64     `json:"id"`
	OrganizationID   int64     `json:"organization_id"`
	OrganizationCode string    `json:"organization_code"`
	HealthSystemID   int64     `json:"-"`
	IDValue          string    `json:"id_value"`
	IDAuthority      string    `json:"id_authority"`
	IDType           string    `json:"id_type"`
	FamilyName       string    `json:"family_name"`
	GivenName        string    `json:"given_name"`
	MiddleName       string    `json:"middle_name"`
	BirthDate        Date      `json:"birth_date"`
	Sex              string    `json:"sex"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Vaccination is a current vaccination event of a registry patient, as the registry's
// consolidated record shows it: reports entered in error (RXA-21 D) are not shown, and the other
// reports of the same dose (historical reports of an administered dose, possibly from other
// organizations) are folded into the one shown, listed in Merged. The organization and site are
// the source of the report shown.
type Vaccination struct {
	ID               int64          `json:"id"`
	OrganizationID   int64          `json:"organization_id"`
	OrganizationCode string         `json:"organization_code"`
	HealthSystemID   int64          `json:"-"`
	SiteID           int64          `json:"site_id"`
	SiteCode         string         `json:"site_code"`
	Kind             string         `json:"kind"` // dose, refusal, immunity, not_administered
	CVX              string         `json:"cvx"`
	NDC              string         `json:"ndc,omitempty"`
	AdministeredOn   Date           `json:"administered_on"`
	Historical       bool           `json:"historical"`
	InfoSource       string         `json:"info_source,omitempty"`
	Amount           string         `json:"amount,omitempty"`
	AmountUnits      string         `json:"amount_units,omitempty"`
	Lot              string         `json:"lot,omitempty"`
	LotExpiration    Date           `json:"lot_expiration"`
	MVX              string         `json:"mvx,omitempty"`
	Route            string         `json:"route,omitempty"`
	BodySite         string         `json:"body_site,omitempty"`
	CompletionStatus string         `json:"completion_status,omitempty"`
	ActionCode       string         `json:"action_code,omitempty"`
	RefusalReason    string         `json:"refusal_reason,omitempty"`
	OrderNumber      string         `json:"order_number,omitempty"` // ORC-3
	Merged           []MergedReport `json:"merged,omitempty"`
}

// MergedReport is another report of a vaccination's dose, merged into the one shown: who
// reported it and what they said it was.
type MergedReport struct {
	VaccinationID    int64  `json:"vaccination_id"`
	OrganizationID   int64  `json:"organization_id"`
	OrganizationCode string `json:"organization_code"`
	HealthSystemID   int64  `json:"-"`
	SiteID           int64  `json:"site_id"`
	SiteCode         string `json:"site_code"`
	CVX              string `json:"cvx,omitempty"`
	Historical       bool   `json:"historical"`
	InfoSource       string `json:"info_source,omitempty"`
}

// PatientSummary is a search result. For a patient whose sharing status is Unknown only the id
// and status are given: the status must be resolved before anything else is shown.
type PatientSummary struct {
	ID                 int64   `json:"id"`
	Env                string  `json:"env"`
	Sharing            Sharing `json:"sharing"`
	ResolutionRequired bool    `json:"resolution_required,omitempty"`
	FamilyName         string  `json:"family_name,omitempty"`
	GivenName          string  `json:"given_name,omitempty"`
	BirthDate          Date    `json:"birth_date"`
	Sex                string  `json:"sex,omitempty"`
}

// PatientQuery searches registry patients by name and birth date.
type PatientQuery struct {
	Env        string // "P" (default) or "T"
	FamilyName string // required, case-insensitive exact match
	GivenName  string // optional, case-insensitive prefix
	BirthDate  Date   // required
	Limit      int
	// IDValue, instead of the name and birth date: a patient identifier (PID-3) reported by any
	// organization, exact match.
	IDValue string
}

// SharingChange is one change of a patient's data-sharing status (table sharing_changes).
type SharingChange struct {
	ID                int64     `json:"id"`
	RegistryPatientID int64     `json:"registry_patient_id"`
	OldStatus         Sharing   `json:"old_status"`
	NewStatus         Sharing   `json:"new_status"`
	Source            string    `json:"source"` // "admin", "hl7", "policy"
	Reason            string    `json:"reason"`
	FormRef           string    `json:"form_ref"`
	Attestation       string    `json:"attestation,omitempty"`
	UserID            *int64    `json:"user_id,omitempty"`
	ChangedAt         time.Time `json:"changed_at"`
}

// SiteFilter selects sites.
type SiteFilter struct {
	IDs            []int64 // nil: any
	OrganizationID int64
	HealthSystemID int64
	Status         SiteStatus
	NeedsAA        bool // only sites flagged "needs AA"
}

// UserFilter selects users for listing.
type UserFilter struct {
	SiteIDs  []int64 // members of any of these sites; nil with AllSites: every user
	AllSites bool
	Status   UserStatus
	Limit    int
}

// UserQuery is the duplicate search: first and last name, or email (case-insensitive).
type UserQuery struct {
	FirstName string
	LastName  string
	Email     string
	Limit     int
}

// String renders a site status change target for messages.
func (s SiteStatus) String() string { return string(s) }

func (r Role) String() string { return string(r) }
