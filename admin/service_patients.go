package admin

import (
	"context"
	"strings"
)

// visibility answers which organizations' records an actor may see for a patient whose sharing
// status is No: those of the organizations of the actor's sites (the whole health system for
// Health System Users).
type visibility struct {
	all      bool
	orgs     map[int64]bool
	families map[int64]bool
}

func visibilityOf(a Actor) visibility {
	v := visibility{all: a.privileged(), orgs: map[int64]bool{}, families: map[int64]bool{}}
	for _, m := range a.Memberships {
		if !m.Role.Can(PermReadPatients) {
			continue
		}
		v.orgs[m.OrganizationID] = true
		if m.Role.HealthSystem() {
			v.families[m.HealthSystemID] = true
		}
	}
	return v
}

func (v visibility) sees(orgID, healthSystemID int64) bool {
	return v.all || v.orgs[orgID] || v.families[healthSystemID]
}

// reportedBy reports whether one of the actor's organizations reported the patient.
func (v visibility) reportedBy(p *Patient) bool {
	if v.all {
		return true
	}
	for _, r := range p.Reports {
		if v.sees(r.OrganizationID, r.HealthSystemID) {
			return true
		}
	}
	return false
}

// restrict keeps only the records of the actor's organizations, and shows their own report's
// demographics: what a patient who objected to sharing (No) shows to an organization that
// reported them.
func (v visibility) restrict(p *Patient) {
	if v.all {
		return
	}
	reports := []PatientReport{}
	for _, r := range p.Reports {
		if v.sees(r.OrganizationID, r.HealthSystemID) {
			reports = append(reports, r)
		}
	}
	p.Reports = reports
	if len(reports) > 0 {
		r := reports[0]
		p.FamilyName, p.GivenName, p.MiddleName, p.BirthDate, p.Sex = r.FamilyName, r.GivenName, r.MiddleName, r.BirthDate, r.Sex
	}
	vax := []Vaccination{}
	for _, x := range p.Vaccinations {
		var own []MergedReport
		for _, m := range x.Merged {
			if v.sees(m.OrganizationID, m.HealthSystemID) {
				own = append(own, m)
			}
		}
		if v.sees(x.OrganizationID, x.HealthSystemID) {
			x.Merged = own
			vax = append(vax, x)
			continue
		}
		if len(own) == 0 {
			continue
		}
		// Another organization's report of the dose is the one shown: show the actor's own
		// report instead, with only what it reported (no lot, route... of the other report).
		m := own[0]
		vax = append(vax, Vaccination{ID: m.VaccinationID, OrganizationID: m.OrganizationID,
			OrganizationCode: m.OrganizationCode, HealthSystemID: m.HealthSystemID, SiteID: m.SiteID,
			SiteCode: m.SiteCode, Kind: x.Kind, CVX: m.CVX, AdministeredOn: x.AdministeredOn,
			Historical: m.Historical, InfoSource: m.InfoSource, Merged: own[1:]})
	}
	p.Vaccinations = vax
}

// LookupPatient returns a registry patient with their vaccinations, honouring data sharing:
// a patient with status No is visible only to the organizations that reported them, with only
// their own records (others get ErrNotFound); a patient with status Unknown is not shown to
// anyone until the status is resolved (ErrSharingUnresolved).
func (s *Service) LookupPatient(ctx context.Context, a Actor, id int64) (*Patient, error) {
	if !a.canAnywhere(PermReadPatients) {
		return nil, Forbidden("looking up patients requires a site role")
	}
	p, err := s.st.Patient(ctx, id)
	if err != nil {
		return nil, err
	}
	v := visibilityOf(a)
	switch p.Sharing {
	case SharingUnknown:
		return nil, ErrSharingUnresolved.With("patient %d has data-sharing status Unknown: set it to Yes or No (POST /api/v1/patients/%d/sharing) before viewing the records", id, id)
	case SharingNo:
		if !v.reportedBy(p) {
			return nil, NotFound("patient %d not found", id)
		}
		v.restrict(p)
	}
	return p, nil
}

// SearchPatients finds registry patients by family name (+ optional given name) and birth date,
// honouring data sharing: patients with status No that none of the actor's organizations
// reported are left out; patients with status Unknown are listed with their id and status only.
func (s *Service) SearchPatients(ctx context.Context, a Actor, q PatientQuery) ([]PatientSummary, error) {
	if !a.canAnywhere(PermReadPatients) {
		return nil, Forbidden("looking up patients requires a site role")
	}
	q.FamilyName, q.GivenName = strings.TrimSpace(q.FamilyName), strings.TrimSpace(q.GivenName)
	q.IDValue = strings.TrimSpace(q.IDValue)
	if (q.FamilyName == "" || q.BirthDate.IsZero()) && q.IDValue == "" {
		return nil, Invalid("search by family name and birth date (given name optional), or by identifier")
	}
	if q.Env == "" {
		q.Env = "P"
	}
	if q.Env != "P" && q.Env != "T" {
		return nil, Invalid("env must be P (production) or T (test)")
	}
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 50
	}
	found, err := s.st.SearchPatients(ctx, q)
	if err != nil {
		return nil, err
	}
	v := visibilityOf(a)
	out := []PatientSummary{}
	for i := range found {
		p := &found[i]
		sum := PatientSummary{ID: p.ID, Env: p.Env, Sharing: p.Sharing}
		switch p.Sharing {
		case SharingUnknown:
			sum.ResolutionRequired = true
			out = append(out, sum)
			continue
		case SharingNo:
			if !v.reportedBy(p) {
				continue
			}
			v.restrict(p)
		}
		sum.FamilyName, sum.GivenName, sum.BirthDate, sum.Sex = p.FamilyName, p.GivenName, p.BirthDate, p.Sex
		out = append(out, sum)
	}
	return out, nil
}

// SharingInput is a data-sharing change: to No when the patient objects, back to Yes when they
// withdraw the objection, or Yes/No to resolve Unknown. FormRef names the signed form (required
// for an objection and its withdrawal).
type SharingInput struct {
	Status  Sharing `json:"status"`
	FormRef string  `json:"form_ref"`
	Reason  string  `json:"reason,omitempty"`
}

// SetSharing changes a patient's data-sharing status (authorized users: Typical User and above,
// not the read-only roles; registry administrators). The change is written to sharing_changes
// (source "admin", the user, the form) and to the audit log, in the transaction that changes the
// status, with the patient row locked.
func (s *Service) SetSharing(ctx context.Context, a Actor, patientID int64, in SharingInput) (*SharingChange, error) {
	if !a.canAnywhere(PermChangeSharing) {
		return nil, Forbidden("changing data sharing requires a role other than Read Only / Read Only Administrator")
	}
	if in.Status != SharingYes && in.Status != SharingNo {
		return nil, Invalid("sharing status must be Y (share) or N (do not share)")
	}
	form, err := checkLabel("form_ref", in.FormRef, 100, false)
	if err != nil {
		return nil, err
	}
	reason, err := checkLabel("reason", in.Reason, 500, false)
	if err != nil {
		return nil, err
	}
	var c *SharingChange
	err = s.st.Tx(ctx, func(tx Store) error {
		p, err := tx.PatientForUpdate(ctx, patientID)
		if err != nil {
			return err
		}
		v := visibilityOf(a)
		if p.Sharing == SharingNo && !v.reportedBy(p) {
			return NotFound("patient %d not found", patientID)
		}
		if p.Sharing == in.Status {
			return ErrSharingUnchanged.With("patient %d already has data-sharing status %s", patientID, in.Status)
		}
		if form == "" && (in.Status == SharingNo || p.Sharing == SharingNo) {
			what := "an objection"
			if p.Sharing == SharingNo {
				what = "withdrawing an objection"
			}
			return Invalid("form_ref (the signed form) is required for %s", what)
		}
		if reason == "" {
			switch {
			case p.Sharing == SharingUnknown:
				reason = "resolve unknown"
			case in.Status == SharingNo:
				reason = "objection"
			default:
				reason = "withdrawal of objection"
			}
		}
		c = &SharingChange{RegistryPatientID: patientID, OldStatus: p.Sharing, NewStatus: in.Status,
			Source: "admin", Reason: reason, FormRef: form, UserID: a.userIDPtr(), ChangedAt: s.now()}
		if err := tx.RecordSharingChange(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "patient.set_sharing", "patient", patientID, a.siteIDs(),
			map[string]Sharing{"sharing": p.Sharing},
			map[string]any{"sharing": in.Status, "form_ref": form, "reason": reason, "sharing_change_id": c.ID})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListAudit lists audit entries, newest first: all of them for registry administrators, those
// touching the sites where the actor may view users otherwise.
func (s *Service) ListAudit(ctx context.Context, a Actor, f AuditFilter) ([]AuditEntry, error) {
	all, ids, err := s.sites(ctx, a, PermViewUsers)
	if err != nil {
		return nil, err
	}
	if !all && len(ids) == 0 {
		return nil, Forbidden("viewing the audit log requires an administrator role")
	}
	if len(f.SiteIDs) > 0 && !all {
		allowed := map[int64]bool{}
		for _, id := range ids {
			allowed[id] = true
		}
		for _, id := range f.SiteIDs {
			if !allowed[id] {
				return nil, Forbidden("you may not view the audit log of site %d", id)
			}
		}
	} else if !all {
		f.SiteIDs = ids
	}
	f.AllSites = all && len(f.SiteIDs) == 0
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	entries, err := s.st.ListAudit(ctx, f)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []AuditEntry{}
	}
	return entries, nil
}
