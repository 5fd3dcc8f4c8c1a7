package admin

import (
	"context"
	"fmt"
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

// LookupPatient returns a registry patient with their vaccinations, honouring data sharing and
// environments (the decision point, ActionViewPatient): a patient with status No is visible only
// to the organizations that reported them, with only their own records, and a test-environment
// patient only to users of a site that reported them (others get ErrNotFound); a patient with
// status Unknown is not shown to anyone until the status is resolved (ErrSharingUnresolved).
// Every view is audited ("patient.view").
func (s *Service) LookupPatient(ctx context.Context, a Actor, id int64) (*Patient, error) {
	if _, err := s.authorize(a, ActionSearchPatients, Target{}); err != nil {
		return nil, err
	}
	p, err := s.st.Patient(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := s.authorize(a, ActionViewPatient, Target{Patient: p})
	if err != nil {
		return nil, err
	}
	switch p.Sharing {
	case SharingUnknown:
		return nil, ErrSharingUnresolved.With("patient %d has data-sharing status Unknown: set it to Yes or No (POST /api/v1/patients/%d/sharing) before viewing the records", id, id)
	case SharingNo:
		visibilityOf(a).restrict(p)
	}
	err = s.st.Tx(ctx, func(tx Store) error {
		return s.audit(ctx, tx, a, d.Rule, "patient.view", "patient", id, a.siteIDs(), nil, map[string]string{"env": p.Env})
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// SearchPatients finds registry patients by family name (+ optional given name) and birth date,
// honouring data sharing: patients with status No that none of the actor's organizations
// reported are left out; patients with status Unknown are listed with their id and status only.
func (s *Service) SearchPatients(ctx context.Context, a Actor, q PatientQuery) ([]PatientSummary, error) {
	if _, err := s.authorize(a, ActionSearchPatients, Target{}); err != nil {
		return nil, err
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
		if p.Env == "T" && !a.privileged() {
			// Test patients belong to the sites that sent them: decide on the whole record.
			full, err := s.st.Patient(ctx, p.ID)
			if err != nil {
				return nil, err
			}
			if !Decide(a, ActionViewPatient, Target{Patient: full}).Allow {
				continue
			}
		}
		sum := PatientSummary{ID: p.ID, Env: p.Env, Sharing: p.Sharing}
		switch p.Sharing {
		case SharingUnknown:
			sum.ResolutionRequired = true
			out = append(out, sum)
			continue
		case SharingNo:
			if !Decide(a, ActionViewPatient, Target{Patient: p}).Allow {
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
// withdraw the objection, or Yes/No to resolve Unknown. Every change carries the reference of the
// signed form (FormRef) or the user's attestation of how the patient's decision was given
// (Attestation), or both.
type SharingInput struct {
	Status      Sharing `json:"status"`
	FormRef     string  `json:"form_ref,omitempty"`
	Attestation string  `json:"attestation,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

// SetSharing changes a patient's data-sharing status. Only registry staff, or users whose role
// allows changing data sharing (not the read-only roles) in an organization that reported the
// patient, may (the decision point, ActionChangeSharing). The change is written to
// sharing_changes (source "admin", the user, the form or attestation) and to the audit log, in
// the transaction that changes the status, with the patient row locked.
func (s *Service) SetSharing(ctx context.Context, a Actor, patientID int64, in SharingInput) (*SharingChange, error) {
	if in.Status != SharingYes && in.Status != SharingNo {
		return nil, Invalid("sharing status must be Y (share) or N (do not share)")
	}
	form, err := checkLabel("form_ref", in.FormRef, 100, false)
	if err != nil {
		return nil, err
	}
	attestation, err := checkLabel("attestation", in.Attestation, 500, false)
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
		d, err := s.authorize(a, ActionChangeSharing, Target{Patient: p})
		if err != nil {
			return err
		}
		if p.Sharing == in.Status {
			return ErrSharingUnchanged.With("patient %d already has data-sharing status %s", patientID, in.Status)
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
		if form == "" && attestation == "" {
			return &Error{Kind: KindInvalid, Code: "form_or_attestation_required",
				Message: fmt.Sprintf("a data-sharing change (%s) needs the signed form's reference or an attestation (how the patient's decision was given)", reason)}
		}
		c = &SharingChange{RegistryPatientID: patientID, OldStatus: p.Sharing, NewStatus: in.Status,
			Source: "admin", Reason: reason, FormRef: form, Attestation: attestation, UserID: a.userIDPtr(), ChangedAt: s.now()}
		if err := tx.RecordSharingChange(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, d.Rule, "patient.set_sharing", "patient", patientID, a.siteIDs(),
			map[string]Sharing{"sharing": p.Sharing},
			map[string]any{"sharing": in.Status, "form_ref": form, "attested": attestation != "", "reason": reason, "sharing_change_id": c.ID})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListAudit lists audit entries, newest first: all of them for registry administrators, those
// touching the sites where the actor may view users otherwise.
func (s *Service) ListAudit(ctx context.Context, a Actor, f AuditFilter) ([]AuditEntry, error) {
	all, ids, err := s.sitesWhere(ctx, a, ActionViewAudit)
	if err != nil {
		return nil, err
	}
	if !all && len(ids) == 0 {
		return nil, &Error{Kind: KindForbidden, Code: "forbidden", Rule: RuleNoRole, Message: "viewing the audit log requires a role that views users"}
	}
	if len(f.SiteIDs) > 0 && !all {
		for _, id := range f.SiteIDs {
			site, err := s.st.Site(ctx, id)
			if err != nil {
				return nil, err
			}
			if _, err := s.authorize(a, ActionViewAudit, Target{Site: site}); err != nil {
				return nil, err
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
