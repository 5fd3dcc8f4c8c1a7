package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/vaxgate/vaxgate/admin"
)

type patientsData struct {
	Family, Given, Birth, Identifier, Env string
	Searched                              bool
	Results                               []admin.PatientSummary
}

// patients is the patient look-up: by family name and birth date (given name optional), or by
// an identifier any organization reported.
func (p *Portal) patients(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := patientsData{Family: strings.TrimSpace(q.Get("family")), Given: strings.TrimSpace(q.Get("given")),
		Birth: strings.TrimSpace(q.Get("birth")), Identifier: strings.TrimSpace(q.Get("identifier")), Env: q.Get("env")}
	if d.Env != "T" {
		d.Env = "P"
	}
	v := view{Data: &d, Fields: map[string]string{}}
	status := http.StatusOK
	if q.Has("search") {
		pq := admin.PatientQuery{Env: d.Env, FamilyName: d.Family, GivenName: d.Given, IDValue: d.Identifier}
		var err error
		if d.Birth != "" && d.Identifier == "" {
			pq.BirthDate, err = admin.ParseDate(d.Birth)
		}
		if err == nil {
			d.Results, err = p.svc.SearchPatients(r.Context(), *s.actor, pq)
		}
		if err != nil {
			st, msg := p.formError(r, err)
			if st == http.StatusForbidden || st >= 500 {
				p.fail(w, r, s, err)
				return
			}
			status = st
			if strings.Contains(msg, "date") && d.Birth != "" {
				v.Fields["birth"] = msg
			} else {
				v.Fields["family"] = msg
			}
		} else {
			d.Searched = true
		}
	}
	p.render(w, r, s, status, "patients", "Patients", v)
}

type patientData struct {
	ID          int64
	Patient     *admin.Patient
	Unresolved  bool   // the sharing status is Unknown: the record is not shown until resolved
	Change      bool   // the decision point lets the actor change this patient's data sharing
	ChangeWhy   string // and why not, when it does not
	Status      string
	FormRef     string
	Attestation string
	Reason      string
}

func (p *Portal) patient(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	p.showPatient(w, r, s, id, http.StatusOK, view{})
}

// showPatient renders the record, or the resolution form when the status is Unknown.
func (p *Portal) showPatient(w http.ResponseWriter, r *http.Request, s *session, id int64, status int, v view) {
	d, _ := v.Data.(*patientData)
	if d == nil {
		d = &patientData{}
	}
	dec := p.svc.Can(r.Context(), *s.actor, admin.ActionChangeSharing, admin.Target{PatientID: id})
	d.ID, d.Change, d.ChangeWhy = id, dec.Allow, strings.TrimSuffix(dec.Reason, ".")+"."
	pt, err := p.svc.LookupPatient(r.Context(), *s.actor, id)
	switch {
	case errors.Is(err, admin.ErrSharingUnresolved):
		d.Unresolved = true
		v.Data = d
		p.render(w, r, s, status, "patient", "Patient "+strconv.FormatInt(id, 10)+": data sharing Unknown", v)
		return
	case err != nil:
		p.fail(w, r, s, err)
		return
	}
	d.Patient = pt
	v.Data = d
	p.render(w, r, s, status, "patient", pt.GivenName+" "+pt.FamilyName, v)
}

// patientSharing changes the data-sharing status: resolves Unknown, records an objection or its
// withdrawal, each with the form reference.
func (p *Portal) patientSharing(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	in := admin.SharingInput{Status: admin.Sharing(f.Get("status")), FormRef: f.Get("form_ref"), Attestation: f.Get("attestation"), Reason: f.Get("reason")}
	if _, err := p.svc.SetSharing(r.Context(), *s.actor, id, in); err != nil {
		st, msg := p.formError(r, err)
		if st == http.StatusForbidden || st == http.StatusNotFound || st >= 500 {
			p.fail(w, r, s, err)
			return
		}
		field := "status"
		switch e := admin.AsError(err); {
		case e.Code == "form_or_attestation_required":
			field, msg = "form_ref", "Give the form reference of the signed form, or an attestation of how the decision was given."
		case strings.HasPrefix(e.Message, "attestation"):
			field = "attestation"
		case strings.HasPrefix(e.Message, "form_ref"):
			field = "form_ref"
		}
		d := &patientData{Status: f.Get("status"), FormRef: f.Get("form_ref"), Attestation: f.Get("attestation"), Reason: f.Get("reason")}
		p.showPatient(w, r, s, id, st, view{Data: d, Fields: map[string]string{field: msg}, Error: "The data-sharing status was not changed: see below."})
		return
	}
	seeOther(w, r, "/patients/"+strconv.FormatInt(id, 10), "sharing", nil)
}
