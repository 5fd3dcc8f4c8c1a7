package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin/passwd"
)

// NewUserInput is a person's account details.
type NewUserInput struct {
	Username  string `json:"username"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Phone     string `json:"phone,omitempty"`
}

func (in NewUserInput) check() (NewUserInput, error) {
	var err error
	in.Username = strings.TrimSpace(in.Username)
	if err = CheckUsername(in.Username); err != nil {
		return in, err
	}
	if in.FirstName, err = checkName("first name", in.FirstName); err != nil {
		return in, err
	}
	if in.LastName, err = checkName("last name", in.LastName); err != nil {
		return in, err
	}
	if in.Email, err = checkEmail(in.Email); err != nil {
		return in, err
	}
	if in.Phone, err = checkPhone(in.Phone); err != nil {
		return in, err
	}
	return in, nil
}

// userAudit is what the audit log keeps of a user: no password hash, no contact details.
type userAudit struct {
	Username      string       `json:"username"`
	Status        UserStatus   `json:"status"`
	RegistryAdmin bool         `json:"registry_admin,omitempty"`
	Locked        bool         `json:"locked"`
	MustChange    bool         `json:"must_change_password,omitempty"`
	Memberships   []Membership `json:"memberships,omitempty"`
}

func auditUser(u *User) userAudit {
	return userAudit{u.Username, u.Status, u.RegistryAdmin, u.Locked(), u.MustChangePassword, u.Memberships}
}

func userSites(u *User) []int64 {
	ids := make([]int64, 0, len(u.Memberships))
	for _, m := range u.Memberships {
		ids = append(ids, m.SiteID)
	}
	return ids
}

// BootstrapRegistryAdmin creates the first registry administrator, active, with the given
// password (system actor only: the command line). It is refused once a registry administrator
// exists; later ones are invited by a registry administrator.
func (s *Service) BootstrapRegistryAdmin(ctx context.Context, a Actor, in NewUserInput, password string) (*User, error) {
	return s.bootstrap(ctx, a, in, password, false)
}

// EnsureFirstRegistryAdmin creates the first registry administrator when the registry has none
// (the first start of a new installation), with a generated password that must be changed at the
// first sign-in; the password is returned, to be shown once. With a registry administrator
// already there it creates nothing and returns a nil user.
func (s *Service) EnsureFirstRegistryAdmin(ctx context.Context, a Actor, in NewUserInput) (*User, string, error) {
	password, err := GeneratePassword()
	if err != nil {
		return nil, "", err
	}
	u, err := s.bootstrap(ctx, a, in, password, true)
	if errors.Is(err, ErrAlreadyBootstrap) {
		return nil, "", nil
	}
	if errors.Is(err, ErrUsernameTaken) {
		// Two engines starting together on a new database both found no registry administrator;
		// the other one created it first. Created once, its password was shown once, there.
		if n, cerr := s.st.CountRegistryAdmins(ctx); cerr == nil && n > 0 {
			return nil, "", nil
		}
	}
	if err != nil {
		return nil, "", err
	}
	return u, password, nil
}

func (s *Service) bootstrap(ctx context.Context, a Actor, in NewUserInput, password string, mustChange bool) (*User, error) {
	if !a.System {
		return nil, Forbidden("the first registry administrator is created from the command line")
	}
	in, err := in.check()
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(password, in.Username); err != nil {
		return nil, err
	}
	hash, err := passwd.Hash(password)
	if err != nil {
		return nil, fmt.Errorf("admin: hash password: %w", err)
	}
	now := s.now()
	u := &User{Username: in.Username, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email, Phone: in.Phone,
		Status: UserActive, RegistryAdmin: true, PasswordHash: hash, LastActiveAt: &now, MustChangePassword: mustChange}
	err = s.st.Tx(ctx, func(tx Store) error {
		n, err := tx.CountRegistryAdmins(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrAlreadyBootstrap.With("a registry administrator already exists; registry administrators invite further ones")
		}
		if err := s.createUser(ctx, tx, u); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "user.bootstrap", "user", u.ID, nil, nil, auditUser(u))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Service) createUser(ctx context.Context, tx Store, u *User) error {
	u.CreatedAt = s.now()
	u.UpdatedAt = u.CreatedAt
	if err := tx.CreateUser(ctx, u); err != nil {
		switch {
		case errors.Is(err, ErrUsernameTaken):
			return ErrUsernameTaken.With("the username %s is taken", u.Username)
		case errors.Is(err, ErrDuplicateUser):
			return ErrDuplicateUser.With("a user with email %s already exists: search for them and add them to the site", u.Email)
		}
		return err
	}
	return nil
}

// SearchUsers is the search before an invitation: by first and last name, or by email, across
// the registry (the person may already have an account at another site). Any actor who may
// manage users somewhere may search.
func (s *Service) SearchUsers(ctx context.Context, a Actor, q UserQuery) ([]UserMatch, error) {
	if _, err := s.authorize(a, ActionSearchUsers, Target{}); err != nil {
		return nil, err
	}
	q.FirstName, q.LastName, q.Email = strings.TrimSpace(q.FirstName), strings.TrimSpace(q.LastName), strings.TrimSpace(q.Email)
	if q.Email == "" && (q.FirstName == "" || q.LastName == "") {
		return nil, Invalid("search by first and last name, or by email")
	}
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 50
	}
	return s.st.SearchUsers(ctx, q)
}

// InviteInput is an invitation of a new user to a site.
type InviteInput struct {
	NewUserInput
	SiteID        int64         `json:"site_id"`
	Role          Role          `json:"role"`
	Designations  []Designation `json:"designations,omitempty"`
	RegistryAdmin bool          `json:"registry_admin,omitempty"` // registry administrators only; then SiteID may be 0
	// NotDuplicate confirms that the people with the same first and last name found by the
	// search are someone else.
	NotDuplicate bool `json:"not_duplicate,omitempty"`
	// SkipEmail returns the registration link instead of emailing it (system actor only: an
	// operator at the command line without a mail server).
	SkipEmail bool `json:"-"`
}

// Invitation is the result of an invitation.
type Invitation struct {
	User      *User     `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
	Emailed   bool      `json:"emailed"`
	Link      string    `json:"-"` // only with SkipEmail
}

// checkDesignations validates designations. The Access Administrator designation goes with any
// role: it grants user management at the site, the role decides access to patients.
func checkDesignations(role Role, ds []Designation) ([]Designation, error) {
	if !role.Valid() {
		return nil, Invalid("role %q is not one of %v", role, Roles)
	}
	out := []Designation{}
	for _, d := range ds {
		if !d.Valid() {
			return nil, Invalid("designation %q is not one of %v", d, Designations)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Invite creates an account in status "invited" and emails a one-time registration link. The
// duplicate search runs first: an existing user with the same email is refused
// (ErrDuplicateUser: add them to the site instead), and users with the same first and last name
// are refused (ErrPossibleDuplicate) unless in.NotDuplicate confirms they are someone else. The
// email is sent before the transaction commits: when it cannot be sent, nothing is created.
func (s *Service) Invite(ctx context.Context, a Actor, in InviteInput) (*Invitation, error) {
	nu, err := in.NewUserInput.check()
	if err != nil {
		return nil, err
	}
	if in.SkipEmail && !a.System {
		return nil, Forbidden("only the command line may skip the invitation email")
	}
	var site *Site
	var memberships []Membership
	var d Decision
	if in.RegistryAdmin {
		if d, err = s.authorize(a, ActionInviteRegistryStaff, Target{}); err != nil {
			return nil, err
		}
	}
	if in.SiteID != 0 || !in.RegistryAdmin {
		if in.SiteID == 0 {
			return nil, Invalid("site_id is required")
		}
		if site, err = s.st.Site(ctx, in.SiteID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, Invalid("site %d not found", in.SiteID)
			}
			return nil, err
		}
		if d, err = s.authorize(a, ActionInviteUser, Target{Site: site, Role: in.Role}); err != nil {
			return nil, err
		}
		ds, err := checkDesignations(in.Role, in.Designations)
		if err != nil {
			return nil, err
		}
		memberships = []Membership{{SiteID: site.ID, SiteCode: site.Code, OrganizationID: site.OrganizationID,
			HealthSystemID: site.HealthSystemID, Role: in.Role, Designations: ds}}
	}
	if !in.SkipEmail && !s.o.SMTP.Configured() {
		return nil, ErrMailUnavailable.With("no mail server is configured for invitations")
	}

	// The search before the invitation.
	if m, err := s.st.SearchUsers(ctx, UserQuery{Email: nu.Email, Limit: 5}); err != nil {
		return nil, err
	} else if len(m) > 0 {
		return nil, ErrDuplicateUser.With("user %s already has the email %s: add them to the site instead of inviting", m[0].Username, nu.Email)
	}
	if !in.NotDuplicate {
		m, err := s.st.SearchUsers(ctx, UserQuery{FirstName: nu.FirstName, LastName: nu.LastName, Limit: 5})
		if err != nil {
			return nil, err
		}
		if len(m) > 0 {
			names := make([]string, len(m))
			for i := range m {
				names[i] = m[i].Username
			}
			return nil, ErrPossibleDuplicate.With("users with this first and last name exist (%s): add the existing user to the site, or confirm with not_duplicate that this is someone else",
				strings.Join(names, ", "))
		}
	}

	u := &User{Username: nu.Username, FirstName: nu.FirstName, LastName: nu.LastName, Email: nu.Email, Phone: nu.Phone,
		Status: UserInvited, RegistryAdmin: in.RegistryAdmin, Memberships: memberships}
	var inv *Invitation
	err = s.st.Tx(ctx, func(tx Store) error {
		if err := s.createUser(ctx, tx, u); err != nil {
			return err
		}
		var err error
		if inv, err = s.issueInvite(ctx, tx, u, in.SiteID, !in.SkipEmail); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, "user.invite", "user", u.ID, userSites(u), nil, auditUser(u))
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// issueInvite stores a new registration token for u and emails the link (or returns it).
func (s *Service) issueInvite(ctx context.Context, tx Store, u *User, siteID int64, email bool) (*Invitation, error) {
	tok, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	i := &Invite{UserID: u.ID, SiteID: siteID, CreatedAt: now, ExpiresAt: now.Add(s.o.InviteTTL)}
	if err := tx.CreateInvite(ctx, i, hash); err != nil {
		return nil, err
	}
	link := strings.TrimRight(s.o.BaseURL, "/") + "/api/v1/register?token=" + url.QueryEscape(tok)
	inv := &Invitation{User: u, ExpiresAt: i.ExpiresAt}
	if !email {
		inv.Link = link
		return inv, nil
	}
	data := InvitationData{FirstName: u.FirstName, LastName: u.LastName, Username: u.Username,
		RegistryName: s.o.RegistryName, HelpDesk: s.o.HelpDesk, Link: link, ExpiresAt: i.ExpiresAt}
	if siteID != 0 {
		site, err := tx.Site(ctx, siteID)
		if err != nil {
			return nil, err
		}
		data.SiteCode, data.SiteName, data.OrganizationCode = site.Code, site.Name, site.OrganizationCode
	}
	subject, body, err := renderInvitation(s.o.Invitation, data)
	if err != nil {
		return nil, err
	}
	err = sendMail(ctx, s.o.SMTP, mailMessage{To: u.Email, Subject: subject, Body: body}, now)
	if err != nil {
		s.log.Warn("invitation email failed", zap.Int64("user_id", u.ID), zap.Error(err))
		return nil, ErrMailUnavailable.Wrap(err, "the invitation email could not be sent; nothing was created")
	}
	inv.Emailed = true
	return inv, nil
}

// ResendInvite issues a new registration link for a user who has not registered yet; older
// links stop working.
func (s *Service) ResendInvite(ctx context.Context, a Actor, userID int64, skipEmail bool) (*Invitation, error) {
	if skipEmail && !a.System {
		return nil, Forbidden("only the command line may skip the invitation email")
	}
	var inv *Invitation
	err := s.st.Tx(ctx, func(tx Store) error {
		u, err := tx.UserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, ActionResendInvite, Target{User: u})
		if err != nil {
			return err
		}
		if u.Status != UserInvited {
			return ErrInvalidTransition.With("user %s has already registered", u.Username)
		}
		if !skipEmail && !s.o.SMTP.Configured() {
			return ErrMailUnavailable.With("no mail server is configured for invitations")
		}
		var siteID int64
		if len(u.Memberships) > 0 {
			siteID = u.Memberships[0].SiteID
		}
		if inv, err = s.issueInvite(ctx, tx, u, siteID, !skipEmail); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, "user.reinvite", "user", u.ID, userSites(u), nil, nil)
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// Register completes an invitation: the user chooses a password (policy applies) and accepts
// the user agreement; the account becomes active. The link works once.
func (s *Service) Register(ctx context.Context, token, password string, acceptAgreement bool) (*User, error) {
	if !validToken(token) {
		return nil, ErrInviteInvalid
	}
	if !acceptAgreement {
		return nil, &Error{Kind: KindInvalid, Code: "agreement_required", Message: "the user agreement must be accepted to register"}
	}
	var u *User
	err := s.st.Tx(ctx, func(tx Store) error {
		inv, err := tx.ConsumeInvite(ctx, hashToken(token), s.now())
		if err != nil {
			return err
		}
		if u, err = tx.UserForUpdate(ctx, inv.UserID); err != nil {
			return err
		}
		if u.Status != UserInvited {
			return ErrInviteInvalid.With("the account is %s; ask your access administrator", u.Status.Label())
		}
		if err := CheckPassword(password, u.Username); err != nil {
			return err // the invitation is not consumed: the transaction rolls back
		}
		hash, err := passwd.Hash(password)
		if err != nil {
			return fmt.Errorf("admin: hash password: %w", err)
		}
		now := s.now()
		if err := tx.SetPassword(ctx, u.ID, hash, false, now); err != nil {
			return err
		}
		if err := tx.AcceptAgreement(ctx, u.ID, s.o.AgreementVersion, now); err != nil {
			return err
		}
		if err := tx.SetUserStatus(ctx, u.ID, UserActive, now); err != nil {
			return err
		}
		before := auditUser(u)
		if u, err = tx.User(ctx, u.ID); err != nil {
			return err
		}
		if _, err := s.refreshAA(ctx, tx, userSites(u)); err != nil { // an AA's registration clears the flag
			return err
		}
		actor := Actor{UserID: u.ID, Name: u.Username}
		return s.audit(ctx, tx, actor, RuleSelf, "user.register", "user", u.ID, userSites(u), before,
			map[string]any{"status": u.Status, "agreement_version": u.AgreementVersion})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ListUsers lists the users of a site (siteID) or of every site where the actor may view users.
func (s *Service) ListUsers(ctx context.Context, a Actor, siteID int64, status UserStatus) ([]User, error) {
	if status != "" && !status.Valid() {
		return nil, Invalid("status %q is not one of invited, active, inactive_manual, inactive_expired", status)
	}
	f := UserFilter{Status: status}
	if siteID != 0 {
		site, err := s.st.Site(ctx, siteID)
		if err != nil {
			return nil, err
		}
		if _, err := s.authorize(a, ActionListUsers, Target{Site: site}); err != nil {
			return nil, err
		}
		f.SiteIDs = []int64{siteID}
	} else {
		all, ids, err := s.sitesWhere(ctx, a, ActionListUsers)
		if err != nil {
			return nil, err
		}
		if !all && len(ids) == 0 {
			return nil, &Error{Kind: KindForbidden, Code: "forbidden", Rule: RuleNoRole, Message: "viewing users requires a role that views users"}
		}
		f.AllSites, f.SiteIDs = all, ids
	}
	return s.st.ListUsers(ctx, f)
}

// User returns a user the actor may view (themselves, or a user of a site where they may view
// users).
func (s *Service) User(ctx context.Context, a Actor, id int64) (*User, error) {
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(a, ActionViewUser, Target{User: u}); err != nil {
		return nil, err
	}
	return u, nil
}

// ProfileInput changes a user's contact details; nil fields stay as they are.
type ProfileInput struct {
	FirstName *string `json:"first_name,omitempty"`
	LastName  *string `json:"last_name,omitempty"`
	Email     *string `json:"email,omitempty"`
	Phone     *string `json:"phone,omitempty"`
}

// UpdateUser changes a user's name, email or phone (their administrators, or the user).
func (s *Service) UpdateUser(ctx context.Context, a Actor, id int64, in ProfileInput) (*User, error) {
	var u *User
	err := s.st.Tx(ctx, func(tx Store) error {
		before, err := tx.UserForUpdate(ctx, id)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, ActionUpdateUser, Target{User: before})
		if err != nil {
			return err
		}
		first, last, email, phone := before.FirstName, before.LastName, before.Email, before.Phone
		if in.FirstName != nil {
			if first, err = checkName("first name", *in.FirstName); err != nil {
				return err
			}
		}
		if in.LastName != nil {
			if last, err = checkName("last name", *in.LastName); err != nil {
				return err
			}
		}
		if in.Email != nil {
			if email, err = checkEmail(*in.Email); err != nil {
				return err
			}
		}
		if in.Phone != nil {
			if phone, err = checkPhone(*in.Phone); err != nil {
				return err
			}
		}
		if err := tx.UpdateUserProfile(ctx, id, first, last, email, phone, s.now()); err != nil {
			if errors.Is(err, ErrDuplicateUser) {
				return ErrDuplicateUser.With("another user has the email %s", email)
			}
			return err
		}
		if u, err = tx.User(ctx, id); err != nil {
			return err
		}
		// Contact details are personal data: the audit says which fields changed, not to what.
		changed := []string{}
		if first != before.FirstName {
			changed = append(changed, "first_name")
		}
		if last != before.LastName {
			changed = append(changed, "last_name")
		}
		if email != before.Email {
			changed = append(changed, "email")
		}
		if phone != before.Phone {
			changed = append(changed, "phone")
		}
		return s.audit(ctx, tx, a, d.Rule, "user.update", "user", id, userSites(u), nil, map[string]any{"changed": changed})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetMembership changes the role (and designations) of a member of a site. With designations
// nil the current ones are kept. Taking the Access Administrator designation from the site's last
// active AA is refused (ErrLastAA). A user who is not a member of the site is not added: that is
// an invitation the user must accept (InviteToSite); the decision point denies it with rule
// "consent-required".
func (s *Service) SetMembership(ctx context.Context, a Actor, userID, siteID int64, role Role, designations []Designation) (*User, error) {
	site, err := s.st.Site(ctx, siteID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, NotFound("site %d not found", siteID)
		}
		return nil, err
	}
	if !role.Valid() {
		return nil, Invalid("role %q is not one of %v", role, Roles)
	}
	var (
		u       *User
		flagged []Site
	)
	err = s.st.Tx(ctx, func(tx Store) error {
		target, err := tx.UserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, ActionSetMembership, Target{User: target, Site: site, Role: role})
		if err != nil {
			return err
		}
		ds := designations
		if ds == nil {
			ds = []Designation{}
			if cur := target.Membership(siteID); cur != nil {
				ds = append(ds, cur.Designations...)
			}
		}
		if ds, err = checkDesignations(role, ds); err != nil {
			return err
		}
		m := Membership{UserID: userID, SiteID: siteID, SiteCode: site.Code, OrganizationID: site.OrganizationID,
			HealthSystemID: site.HealthSystemID, Role: role, Designations: ds}
		before, err := tx.PutMembership(ctx, m, s.now())
		if err != nil {
			return err
		}
		if u, err = tx.User(ctx, userID); err != nil {
			return err
		}
		if flagged, err = s.refreshAA(ctx, tx, []int64{siteID}); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, "user.set_membership", "user", userID, []int64{siteID}, before, u.Membership(siteID))
	})
	if err != nil {
		return nil, err
	}
	s.tellNeedsAA(ctx, flagged)
	return u, nil
}

// RemoveMembership removes a user from a site (same last-AA rule).
func (s *Service) RemoveMembership(ctx context.Context, a Actor, userID, siteID int64) (*User, error) {
	site, err := s.st.Site(ctx, siteID)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.st.Tx(ctx, func(tx Store) error {
		target, err := tx.UserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, ActionRemoveMembership, Target{User: target, Site: site})
		if err != nil {
			return err
		}
		before, err := tx.DeleteMembership(ctx, userID, siteID)
		if err != nil {
			return err
		}
		if u, err = tx.User(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, "user.remove_membership", "user", userID, []int64{siteID}, before, nil)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// userAction runs a change of one user's account after the decision point allowed act, with
// the user's row locked, and audits it with before and after. It re-checks the sites the change
// could leave without an active AA.
func (s *Service) userAction(ctx context.Context, a Actor, id int64, act Action, action string, fn func(tx Store, u *User) error) (*User, error) {
	var (
		after   *User
		flagged []Site
	)
	err := s.st.Tx(ctx, func(tx Store) error {
		u, err := tx.UserForUpdate(ctx, id)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, act, Target{User: u})
		if err != nil {
			return err
		}
		if err := fn(tx, u); err != nil {
			return err
		}
		if after, err = tx.User(ctx, id); err != nil {
			return err
		}
		if flagged, err = s.refreshAA(ctx, tx, userSites(u)); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, action, "user", id, userSites(u), auditUser(u), auditUser(after))
	})
	if err != nil {
		return nil, err
	}
	s.tellNeedsAA(ctx, flagged)
	return after, nil
}

// Deactivate sets a user "Inactive Manual" and ends their sessions. The last active Access
// Administrator of a site cannot be deactivated (ErrLastAA).
func (s *Service) Deactivate(ctx context.Context, a Actor, id int64) (*User, error) {
	return s.userAction(ctx, a, id, ActionDeactivateUser, "user.deactivate", func(tx Store, u *User) error {
		if u.Status == UserInactiveManual {
			return ErrInvalidTransition.With("user %s is already Inactive Manual", u.Username)
		}
		now := s.now()
		if err := tx.SetUserStatus(ctx, id, UserInactiveManual, now); err != nil {
			return err
		}
		return tx.RevokeUserSessions(ctx, id, 0, now)
	})
}

// Reactivate makes an Inactive Manual or Inactive Expired user active again; the inactivity
// period starts anew.
func (s *Service) Reactivate(ctx context.Context, a Actor, id int64) (*User, error) {
	return s.userAction(ctx, a, id, ActionReactivateUser, "user.reactivate", func(tx Store, u *User) error {
		if u.Status != UserInactiveManual && u.Status != UserInactiveExpired {
			return ErrInvalidTransition.With("user %s is %s, not inactive", u.Username, u.Status.Label())
		}
		return tx.SetUserStatus(ctx, id, UserActive, s.now())
	})
}

// Unlock unlocks an account locked after failed logins.
func (s *Service) Unlock(ctx context.Context, a Actor, id int64) (*User, error) {
	return s.userAction(ctx, a, id, ActionUnlockUser, "user.unlock", func(tx Store, u *User) error {
		if !u.Locked() {
			return ErrInvalidTransition.With("user %s is not locked", u.Username)
		}
		s.throttle.forgetUser(usernameKey(u.Username))
		return tx.Unlock(ctx, id, s.now())
	})
}

// ResetPassword sets a temporary password that must be changed at the next login and ends the
// user's sessions. With password empty one is generated and returned.
func (s *Service) ResetPassword(ctx context.Context, a Actor, id int64, password string) (*User, string, error) {
	generated := ""
	if password == "" {
		var err error
		if password, err = GeneratePassword(); err != nil {
			return nil, "", fmt.Errorf("admin: generate password: %w", err)
		}
		generated = password
	}
	u, err := s.userAction(ctx, a, id, ActionResetPassword, "user.reset_password", func(tx Store, u *User) error {
		if u.Status == UserInvited {
			return ErrInvalidTransition.With("user %s has not registered yet: resend the invitation", u.Username)
		}
		if err := CheckPassword(password, u.Username); err != nil {
			return err
		}
		hash, err := passwd.Hash(password)
		if err != nil {
			return fmt.Errorf("admin: hash password: %w", err)
		}
		now := s.now()
		if err := tx.SetPassword(ctx, id, hash, true, now); err != nil {
			return err
		}
		return tx.RevokeUserSessions(ctx, id, 0, now)
	})
	if err != nil {
		return nil, "", err
	}
	return u, generated, nil
}

// ExpireInactive marks "Inactive Expired" every active account unused for the inactivity period
// (90 days by default) and returns how many. Login applies the same rule to the account at hand.
func (s *Service) ExpireInactive(ctx context.Context) (int, error) {
	now := s.now()
	var (
		n       int
		flagged []Site
	)
	err := s.st.Tx(ctx, func(tx Store) error {
		ids, err := tx.ExpireInactiveUsers(ctx, now.Add(-s.o.InactiveAfter), now)
		if err != nil {
			return err
		}
		n = len(ids)
		for _, id := range ids {
			if err := tx.RevokeUserSessions(ctx, id, 0, now); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, SystemActor("expiry"), "", "user.expire", "user", id, nil,
				map[string]UserStatus{"status": UserActive}, map[string]UserStatus{"status": UserInactiveExpired}); err != nil {
				return err
			}
		}
		// Expiry is not a choice: it may leave a site without an active AA. Every site is
		// re-checked (also those an earlier run or an operator tool left without one).
		flagged, err = s.refreshAA(ctx, tx, nil)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("admin: expire inactive users: %w", err)
	}
	s.tellNeedsAA(ctx, flagged)
	return n, nil
}

// RunMaintenance runs the periodic jobs every interval (default 1h) until ctx ends: account
// expiry, and purging ended sessions and invitations.
func (s *Service) RunMaintenance(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.ExpireInactive(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("account expiry failed", zap.Error(err))
		} else if n > 0 {
			s.log.Info("accounts expired", zap.Int("count", n))
		}
		if _, err := s.st.PurgeExpired(ctx, s.now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			s.log.Error("purging sessions failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UserByUsername is User by username (case-insensitive).
func (s *Service) UserByUsername(ctx context.Context, a Actor, username string) (*User, error) {
	u, err := s.st.UserByUsername(ctx, strings.TrimSpace(username))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, NotFound("user %q not found", username)
		}
		return nil, err
	}
	return s.User(ctx, a, u.ID)
}
