package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/admin/passwd"
)

// OrganizationInput describes a new organization. The parent, when given (by id or code), must
// be a top-level organization: health systems have two levels.
type OrganizationInput struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	ParentID   int64  `json:"parent_id,omitempty"`
	ParentCode string `json:"parent_code,omitempty"`
}

// staffOnly asks the decision point about an action reserved to registry staff.
func (s *Service) staffOnly(a Actor, act Action) error {
	_, err := s.authorize(a, act, Target{})
	return err
}

// CreateOrganization registers an organization (registry administrators only).
func (s *Service) CreateOrganization(ctx context.Context, a Actor, in OrganizationInput) (*Organization, error) {
	if err := s.staffOnly(a, ActionCreateOrganization); err != nil {
		return nil, err
	}
	code, err := checkCode("organization code", in.Code)
	if err != nil {
		return nil, err
	}
	name, err := checkLabel("organization name", in.Name, 200, true)
	if err != nil {
		return nil, err
	}
	o := &Organization{Code: code, Name: name}
	err = s.st.Tx(ctx, func(tx Store) error {
		if in.ParentID != 0 || in.ParentCode != "" {
			var p *Organization
			var err error
			if in.ParentID != 0 {
				p, err = tx.Organization(ctx, in.ParentID)
			} else {
				p, err = tx.OrganizationByCode(ctx, in.ParentCode)
			}
			if errors.Is(err, ErrNotFound) {
				return Invalid("parent organization not found")
			}
			if err != nil {
				return err
			}
			if p.ParentID != nil {
				return Invalid("parent organization %s is itself a child organization: health systems have two levels", p.Code)
			}
			o.ParentID = &p.ID
		}
		if err := tx.CreateOrganization(ctx, o); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				return ErrAlreadyExists.With("organization %s already exists", code)
			}
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "organization.create", "organization", o.ID, nil, nil, o)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// EnsureOrganization returns the organization with in.Code, creating it when it does not exist.
func (s *Service) EnsureOrganization(ctx context.Context, a Actor, in OrganizationInput) (*Organization, error) {
	if err := s.staffOnly(a, ActionCreateOrganization); err != nil {
		return nil, err
	}
	o, err := s.st.OrganizationByCode(ctx, strings.TrimSpace(in.Code))
	if err == nil {
		return o, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	o, err = s.CreateOrganization(ctx, a, in)
	if errors.Is(err, ErrAlreadyExists) { // created concurrently
		return s.st.OrganizationByCode(ctx, strings.TrimSpace(in.Code))
	}
	return o, err
}

// ListOrganizations lists every organization for registry administrators, and the
// organizations of the actor's sites (their whole health system for Health System Users)
// otherwise.
func (s *Service) ListOrganizations(ctx context.Context, a Actor) ([]Organization, error) {
	all, err := s.st.ListOrganizations(ctx)
	if err != nil {
		return nil, err
	}
	if a.privileged() {
		return all, nil
	}
	out := []Organization{}
	for _, o := range all {
		if Decide(a, ActionViewOrganization, Target{Organization: &o}).Allow {
			out = append(out, o)
		}
	}
	return out, nil
}

// Organization returns one organization the actor may see.
func (s *Service) Organization(ctx context.Context, a Actor, id int64) (*Organization, error) {
	o, err := s.st.Organization(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(a, ActionViewOrganization, Target{Organization: o}); err != nil {
		return nil, err
	}
	return o, nil
}

// SiteInput describes a new site. The organization is given by id or code.
type SiteInput struct {
	OrganizationID   int64      `json:"organization_id,omitempty"`
	OrganizationCode string     `json:"organization_code,omitempty"`
	Code             string     `json:"code"`
	Name             string     `json:"name"`
	Status           SiteStatus `json:"status,omitempty"` // default registered
	GoLive           Date       `json:"go_live_date"`
	Facilities       []string   `json:"facilities,omitempty"`
}

func (s *Service) checkSiteInput(ctx context.Context, st Store, in SiteInput) (*Site, error) {
	code, err := checkCode("site code", in.Code)
	if err != nil {
		return nil, err
	}
	name, err := checkLabel("site name", in.Name, 200, true)
	if err != nil {
		return nil, err
	}
	if in.Status == "" {
		in.Status = SiteRegistered
	}
	if !in.Status.Valid() {
		return nil, Invalid("site status %q is not one of registered, testing, production", in.Status)
	}
	var o *Organization
	switch {
	case in.OrganizationID != 0:
		o, err = st.Organization(ctx, in.OrganizationID)
	case in.OrganizationCode != "":
		o, err = st.OrganizationByCode(ctx, in.OrganizationCode)
	default:
		return nil, Invalid("the site's organization (id or code) is required")
	}
	if errors.Is(err, ErrNotFound) {
		return nil, Invalid("organization not found")
	}
	if err != nil {
		return nil, err
	}
	site := &Site{OrganizationID: o.ID, OrganizationCode: o.Code, HealthSystemID: o.HealthSystemID(),
		Code: code, Name: name, Status: in.Status, GoLive: in.GoLive, Facilities: []string{}}
	if site.Status == SiteProduction && site.GoLive.IsZero() {
		site.GoLive = DateOf(s.now())
	}
	for _, f := range in.Facilities {
		f, err := CheckFacilityID(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(site.Facilities, f) {
			site.Facilities = append(site.Facilities, f)
		}
	}
	return site, nil
}

// CreateSite registers a site of an organization with its MSH-4 facility identifiers (registry
// administrators only). A facility identifier belongs to one site only.
func (s *Service) CreateSite(ctx context.Context, a Actor, in SiteInput) (*Site, error) {
	if err := s.staffOnly(a, ActionCreateSite); err != nil {
		return nil, err
	}
	var (
		site    *Site
		flagged []Site
	)
	err := s.st.Tx(ctx, func(tx Store) error {
		var err error
		if site, err = s.checkSiteInput(ctx, tx, in); err != nil {
			return err
		}
		if site.Status != SiteRegistered && !a.System {
			// A new site has no users, so no Access Administrator: it starts registered.
			return ErrSiteNeedsAA.With("a new site has no access administrator, so it cannot start in %s: create it registered, invite its access administrator, then move it to testing", site.Status)
		}
		if err := tx.CreateSite(ctx, site); err != nil {
			return err
		}
		// Operator tools (the demo set-up, scripted onboarding) may create a site directly in
		// testing or production: it is flagged "needs AA" at once and registry staff are told.
		if flagged, err = s.refreshAA(ctx, tx, []int64{site.ID}); err != nil {
			return err
		}
		if site, err = tx.Site(ctx, site.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "site.create", "site", site.ID, []int64{site.ID}, nil, site)
	})
	if err != nil {
		return nil, err
	}
	s.tellNeedsAA(ctx, flagged)
	return site, nil
}

// EnsureSite returns the site with in.Code, creating it when it does not exist, and adds the
// facility identifiers it lacks. An existing site of another organization is a conflict. Its
// status and go-live date are left as they are.
func (s *Service) EnsureSite(ctx context.Context, a Actor, in SiteInput) (*Site, error) {
	if err := s.staffOnly(a, ActionCreateSite); err != nil {
		return nil, err
	}
	site, err := s.st.SiteByCode(ctx, strings.TrimSpace(in.Code))
	if errors.Is(err, ErrNotFound) {
		site, err = s.CreateSite(ctx, a, in)
		if !errors.Is(err, ErrAlreadyExists) {
			return site, err
		}
		site, err = s.st.SiteByCode(ctx, strings.TrimSpace(in.Code))
	}
	if err != nil {
		return nil, err
	}
	if (in.OrganizationID != 0 && in.OrganizationID != site.OrganizationID) ||
		(in.OrganizationCode != "" && in.OrganizationCode != site.OrganizationCode) {
		return nil, ErrAlreadyExists.With("site %s exists in organization %s", site.Code, site.OrganizationCode)
	}
	for _, f := range in.Facilities {
		if slices.Contains(site.Facilities, strings.TrimSpace(f)) {
			continue
		}
		if site, err = s.AddSiteFacility(ctx, a, site.ID, f); err != nil {
			return nil, err
		}
	}
	return site, nil
}

// Site returns a site the actor belongs to (or any site for registry administrators).
func (s *Service) Site(ctx context.Context, a Actor, id int64) (*Site, error) {
	site, err := s.st.Site(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(a, ActionViewSite, Target{Site: site}); err != nil {
		return nil, err
	}
	return site, nil
}

// SiteByCode is Site by code.
func (s *Service) SiteByCode(ctx context.Context, a Actor, code string) (*Site, error) {
	site, err := s.st.SiteByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	return s.Site(ctx, a, site.ID)
}

// ListSites lists the sites the actor may see that match f.
func (s *Service) ListSites(ctx context.Context, a Actor, f SiteFilter) ([]Site, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, Invalid("site status %q is not one of registered, testing, production", f.Status)
	}
	all, ids, err := s.sitesWhere(ctx, a, ActionViewSite)
	if err != nil {
		return nil, err
	}
	if !all {
		if len(ids) == 0 {
			return []Site{}, nil
		}
		f.IDs = ids
	}
	return s.st.ListSites(ctx, f)
}

// SetSiteStatus moves a site through onboarding (registered → testing → production, or one step
// back) and/or sets its go-live date (registry administrators only). Going to production without
// a go-live date sets it to today.
func (s *Service) SetSiteStatus(ctx context.Context, a Actor, siteID int64, status SiteStatus, goLive Date) (*Site, error) {
	if err := s.staffOnly(a, ActionSetSiteStatus); err != nil {
		return nil, err
	}
	if !status.Valid() {
		return nil, Invalid("site status %q is not one of registered, testing, production", status)
	}
	var site *Site
	err := s.st.Tx(ctx, func(tx Store) error {
		before, err := tx.Site(ctx, siteID)
		if err != nil {
			return err
		}
		if status == before.Status && goLive.IsZero() {
			// No date keeps the current one (below), so this would change nothing: say so, and
			// that a go-live date cannot be cleared, which is what an empty date field asks.
			if before.GoLive.IsZero() {
				return ErrInvalidTransition.With("nothing to change: site %s is already in onboarding status %s and has no go-live date; give a go-live date or another status",
					before.Code, status)
			}
			return ErrInvalidTransition.With("nothing to change: site %s is already in onboarding status %s, and its go-live date can be changed but not cleared (an empty date keeps %s)",
				before.Code, status, before.GoLive)
		}
		if status != before.Status && !before.Status.CanMoveTo(status) {
			return ErrInvalidTransition.With("site %s cannot go from %s to %s (registered → testing → production)", before.Code, before.Status, status)
		}
		if status != SiteRegistered && status != before.Status {
			n, err := tx.ActiveAAs(ctx, siteID)
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrSiteNeedsAA.With("site %s has no active access administrator: it cannot move to %s until one of its users is an active access administrator", before.Code, status)
			}
		}
		if goLive.IsZero() {
			goLive = before.GoLive
		}
		if status == SiteProduction && goLive.IsZero() {
			goLive = DateOf(s.now())
		}
		if err := tx.UpdateSiteStatus(ctx, siteID, status, goLive, s.now()); err != nil {
			return err
		}
		if _, err := s.refreshAA(ctx, tx, []int64{siteID}); err != nil {
			return err
		}
		if site, err = tx.Site(ctx, siteID); err != nil {
			return err
		}
		type st struct {
			Status SiteStatus `json:"status"`
			GoLive Date       `json:"go_live_date"`
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "site.set_status", "site", siteID, []int64{siteID},
			st{before.Status, before.GoLive}, st{site.Status, site.GoLive})
	})
	if err != nil {
		return nil, err
	}
	return site, nil
}

// AddSiteFacility adds an MSH-4 identifier to a site (registry administrators only).
func (s *Service) AddSiteFacility(ctx context.Context, a Actor, siteID int64, facility string) (*Site, error) {
	if err := s.staffOnly(a, ActionManageFacilities); err != nil {
		return nil, err
	}
	facility, err := CheckFacilityID(facility)
	if err != nil {
		return nil, err
	}
	var site *Site
	err = s.st.Tx(ctx, func(tx Store) error {
		if _, err := tx.Site(ctx, siteID); err != nil {
			return err
		}
		added, err := tx.AddSiteFacility(ctx, siteID, facility)
		if err != nil {
			return err
		}
		if site, err = tx.Site(ctx, siteID); err != nil {
			return err
		}
		if !added {
			return nil
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "site.add_facility", "site", siteID, []int64{siteID}, nil, map[string]string{"facility_id": facility})
	})
	if err != nil {
		return nil, err
	}
	return site, nil
}

// RemoveSiteFacility removes an MSH-4 identifier from a site (registry administrators only).
func (s *Service) RemoveSiteFacility(ctx context.Context, a Actor, siteID int64, facility string) (*Site, error) {
	if err := s.staffOnly(a, ActionManageFacilities); err != nil {
		return nil, err
	}
	var site *Site
	err := s.st.Tx(ctx, func(tx Store) error {
		if err := tx.RemoveSiteFacility(ctx, siteID, facility); err != nil {
			return err
		}
		var err error
		if site, err = tx.Site(ctx, siteID); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "site.remove_facility", "site", siteID, []int64{siteID}, map[string]string{"facility_id": facility}, nil)
	})
	if err != nil {
		return nil, err
	}
	return site, nil
}

func checkSenderUsername(u string) (string, error) {
	u = strings.TrimSpace(u)
	if len(u) < 3 || len(u) > 64 {
		return "", Invalid("sender username must be 3 to 64 characters")
	}
	for _, r := range u {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r))) {
			return "", Invalid("sender username may contain only letters, digits and . _ - @")
		}
	}
	return u, nil
}

// CreateSOAPCredential gives a site a SOAP sender credential (registry administrators only).
// The facility identifier is added to the site's MSH-4 identifiers when it is not one yet; it
// may not belong to another site. Only the argon2id hash of the password is stored.
func (s *Service) CreateSOAPCredential(ctx context.Context, a Actor, siteID int64, username, password, facilityID string) (*SenderCredential, error) {
	return s.soapCredential(ctx, a, siteID, username, password, facilityID, false)
}

// EnsureSOAPCredential is CreateSOAPCredential, except that an existing credential with this
// username at this site gets the new password and facility and is made active again (handy for
// scripts and the demo set-up). A username of another site is a conflict.
func (s *Service) EnsureSOAPCredential(ctx context.Context, a Actor, siteID int64, username, password, facilityID string) (*SenderCredential, error) {
	c, err := s.soapCredential(ctx, a, siteID, username, password, facilityID, true)
	if errors.Is(err, ErrAlreadyExists) { // created concurrently (unique username): update it
		return s.soapCredential(ctx, a, siteID, username, password, facilityID, true)
	}
	return c, err
}

func (s *Service) soapCredential(ctx context.Context, a Actor, siteID int64, username, password, facilityID string, update bool) (*SenderCredential, error) {
	if err := s.staffOnly(a, ActionManageCredentials); err != nil {
		return nil, err
	}
	username, err := checkSenderUsername(username)
	if err != nil {
		return nil, err
	}
	if err := checkSenderSecret(password); err != nil {
		return nil, err
	}
	facilityID, err = CheckFacilityID(facilityID)
	if err != nil {
		return nil, err
	}
	hash, err := passwd.Hash(password)
	if err != nil {
		return nil, fmt.Errorf("admin: hash sender password: %w", err)
	}
	var c *SenderCredential
	err = s.st.Tx(ctx, func(tx Store) error {
		site, err := tx.Site(ctx, siteID)
		if err != nil {
			return err
		}
		added, err := tx.AddSiteFacility(ctx, siteID, facilityID)
		if err != nil {
			return err
		}
		if added {
			// What the site may send for changed: audited as AddSiteFacility audits it.
			if err := s.audit(ctx, tx, a, RuleRegistryStaff, "site.add_facility", "site", siteID, []int64{siteID}, nil,
				map[string]string{"facility_id": facilityID}); err != nil {
				return err
			}
		}
		existing, err := tx.CredentialByUsername(ctx, username)
		switch {
		case err == nil && update && existing.SiteID == siteID:
			if err := tx.UpdateSOAPCredential(ctx, existing.ID, hash, facilityID); err != nil {
				return err
			}
			if c, err = tx.Credential(ctx, existing.ID); err != nil {
				return err
			}
			return s.audit(ctx, tx, a, RuleRegistryStaff, "credential.update", "credential", c.ID, []int64{site.ID}, existing, c)
		case err == nil:
			return ErrAlreadyExists.With("sender username %s is taken", username)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		c = &SenderCredential{SiteID: siteID, SiteCode: site.Code, Transport: TransportSOAP, Username: username, FacilityID: facilityID, Active: true}
		if err := tx.CreateCredential(ctx, c, hash); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				return ErrAlreadyExists.With("sender username %s is taken", username)
			}
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "credential.create", "credential", c.ID, []int64{site.ID}, nil, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// CreateMLLPCredential gives a site an MLLP sender credential: a source address (range) and/or
// a TLS client certificate subject (registry administrators only). An active credential of
// another site with the same address range or subject is a conflict: a connection must identify
// one site.
func (s *Service) CreateMLLPCredential(ctx context.Context, a Actor, siteID int64, sourceCIDR, certSubject string) (*SenderCredential, error) {
	return s.mllpCredential(ctx, a, siteID, sourceCIDR, certSubject, false)
}

// EnsureMLLPCredential is CreateMLLPCredential, except that an identical active credential of
// the same site is returned as it is (handy for scripts and the demo set-up).
func (s *Service) EnsureMLLPCredential(ctx context.Context, a Actor, siteID int64, sourceCIDR, certSubject string) (*SenderCredential, error) {
	c, err := s.mllpCredential(ctx, a, siteID, sourceCIDR, certSubject, true)
	if errors.Is(err, ErrAlreadyExists) { // created concurrently (unique index): return that one
		return s.mllpCredential(ctx, a, siteID, sourceCIDR, certSubject, true)
	}
	return c, err
}

func (s *Service) mllpCredential(ctx context.Context, a Actor, siteID int64, sourceCIDR, certSubject string, ensure bool) (*SenderCredential, error) {
	if err := s.staffOnly(a, ActionManageCredentials); err != nil {
		return nil, err
	}
	cidr, err := normalizeCIDR(sourceCIDR)
	if err != nil {
		return nil, err
	}
	subject, err := checkLabel("certificate subject", certSubject, 500, false)
	if err != nil {
		return nil, err
	}
	if cidr == "" && subject == "" {
		return nil, Invalid("an MLLP credential needs a source address (CIDR) or a client certificate subject")
	}
	var c *SenderCredential
	err = s.st.Tx(ctx, func(tx Store) error {
		site, err := tx.Site(ctx, siteID)
		if err != nil {
			return err
		}
		others, err := tx.ListCredentials(ctx, 0)
		if err != nil {
			return err
		}
		for _, o := range others {
			if !o.Active || o.Transport != TransportMLLP {
				continue
			}
			if o.SourceCIDR == cidr && o.CertSubject == subject {
				if ensure && o.SiteID == siteID {
					c = &o
					return nil
				}
				return ErrAlreadyExists.With("site %s already has this MLLP credential (id %d)", o.SiteCode, o.ID)
			}
			if o.SiteID != siteID && ((cidr != "" && o.SourceCIDR == cidr && o.CertSubject == "") || (subject != "" && o.CertSubject == subject)) {
				return ErrAlreadyExists.With("an active MLLP credential of site %s has this address or certificate subject", o.SiteCode)
			}
		}
		c = &SenderCredential{SiteID: siteID, SiteCode: site.Code, Transport: TransportMLLP, SourceCIDR: cidr, CertSubject: subject, Active: true}
		if err := tx.CreateCredential(ctx, c, ""); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "credential.create", "credential", c.ID, []int64{site.ID}, nil, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListCredentials lists a site's sender credentials (never their secrets). siteID 0 lists all
// (registry administrators only).
func (s *Service) ListCredentials(ctx context.Context, a Actor, siteID int64) ([]SenderCredential, error) {
	if siteID == 0 {
		if err := s.staffOnly(a, ActionManageCredentials); err != nil {
			return nil, err
		}
		return s.st.ListCredentials(ctx, 0)
	}
	site, err := s.st.Site(ctx, siteID)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(a, ActionViewCredentials, Target{Site: site}); err != nil {
		return nil, err
	}
	return s.st.ListCredentials(ctx, siteID)
}

// RevokeCredential deactivates a sender credential (registry administrators only).
func (s *Service) RevokeCredential(ctx context.Context, a Actor, id int64) (*SenderCredential, error) {
	if err := s.staffOnly(a, ActionManageCredentials); err != nil {
		return nil, err
	}
	var c *SenderCredential
	err := s.st.Tx(ctx, func(tx Store) error {
		before, err := tx.Credential(ctx, id)
		if err != nil {
			return err
		}
		if !before.Active {
			return ErrInvalidTransition.With("credential %d is already revoked", id)
		}
		if err := tx.RevokeCredential(ctx, id, s.now()); err != nil {
			return err
		}
		if c, err = tx.Credential(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, RuleRegistryStaff, "credential.revoke", "credential", id, []int64{c.SiteID}, before, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
