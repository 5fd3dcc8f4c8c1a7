package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
)

// --- audit log ---

// AppendAudit inserts an audit entry.
func (s *AdminStore) AppendAudit(ctx context.Context, e *admin.AuditEntry) error {
	var before, after any
	if len(e.Before) > 0 {
		before = string(e.Before)
	}
	if len(e.After) > 0 {
		after = string(e.After)
	}
	sites := e.SiteIDs
	if sites == nil {
		sites = []int64{}
	}
	err := s.q.QueryRow(ctx, `
		INSERT INTO audit_log (at, actor_user_id, actor, action, target_type, target_id, site_ids, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb) RETURNING id`,
		e.At, e.ActorUserID, e.Actor, e.Action, e.TargetType, e.TargetID, sites, before, after).Scan(&e.ID)
	return admErr(err, "append audit entry")
}

// ListAudit lists audit entries matching f, newest first.
func (s *AdminStore) ListAudit(ctx context.Context, f admin.AuditFilter) ([]admin.AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !f.AllSites {
		where = append(where, "site_ids && "+arg(f.SiteIDs)+"::bigint[]")
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			where = append(where, "starts_with(action, "+arg(f.Action)+")")
		} else {
			where = append(where, "action = "+arg(f.Action))
		}
	}
	if f.TargetType != "" {
		where = append(where, "target_type = "+arg(f.TargetType))
	}
	if f.TargetID != "" {
		where = append(where, "target_id = "+arg(f.TargetID))
	}
	if f.ActorUserID != 0 {
		where = append(where, "actor_user_id = "+arg(f.ActorUserID))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < "+arg(f.Until))
	}
	if f.BeforeID != 0 {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	sql := `SELECT id, at, actor_user_id, actor, action, target_type, target_id, site_ids, before, after FROM audit_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	sql += " ORDER BY id DESC LIMIT " + arg(limit)
	rows, err := s.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, admErr(err, "list audit log")
	}
	defer rows.Close()
	out := []admin.AuditEntry{}
	for rows.Next() {
		var (
			e             admin.AuditEntry
			before, after []byte
		)
		if err := rows.Scan(&e.ID, &e.At, &e.ActorUserID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID,
			&e.SiteIDs, &before, &after); err != nil {
			return nil, admErr(err, "list audit log")
		}
		e.Before, e.After = before, after
		out = append(out, e)
	}
	return out, admErr(rows.Err(), "list audit log")
}

// --- registry patients (read by the admin module) ---

const patientSelect = `SELECT id, env, sharing, family_name, given_name, middle_name, birth_date, sex FROM registry_patients`

func scanPatient(row pgx.Row) (*admin.Patient, error) {
	var (
		p       admin.Patient
		sharing string
		birth   *time.Time
	)
	if err := row.Scan(&p.ID, &p.Env, &sharing, &p.FamilyName, &p.GivenName, &p.MiddleName, &birth, &p.Sex); err != nil {
		return nil, err
	}
	p.Sharing = admin.Sharing(sharing)
	p.BirthDate = dateOf(birth)
	p.Reports = []admin.PatientReport{}
	p.Vaccinations = []admin.Vaccination{}
	p.History = []admin.SharingChange{}
	return &p, nil
}

// Patient returns a registry patient with reports, vaccinations and sharing history.
func (s *AdminStore) Patient(ctx context.Context, id int64) (*admin.Patient, error) {
	return s.patient(ctx, id, "")
}

// PatientForUpdate is Patient with the registry patient's row locked (inside Tx).
func (s *AdminStore) PatientForUpdate(ctx context.Context, id int64) (*admin.Patient, error) {
	return s.patient(ctx, id, " FOR UPDATE")
}

func (s *AdminStore) patient(ctx context.Context, id int64, lock string) (*admin.Patient, error) {
	p, err := scanPatient(s.q.QueryRow(ctx, patientSelect+` WHERE id = $1`+lock, id))
	if err != nil {
		return nil, admErr(err, fmt.Sprintf("patient %d", id))
	}
	if err := s.loadReports(ctx, []*admin.Patient{p}); err != nil {
		return nil, err
	}
	rows, err := s.q.Query(ctx, `
		SELECT v.id, v.organization_id, coalesce(o.parent_id, o.id), v.site_id, s.code, v.kind, v.cvx, v.ndc,
		       v.administered_on, v.historical, v.info_source, v.amount, v.amount_units, v.lot, v.lot_expiration,
		       v.mvx, v.route, v.body_site, v.completion_status, v.action_code, v.refusal_reason, v.deleted
		FROM vaccinations v
		JOIN organizations o ON o.id = v.organization_id
		JOIN sites s ON s.id = v.site_id
		WHERE v.registry_patient_id = $1
		ORDER BY v.administered_on, v.id`, id)
	if err != nil {
		return nil, admErr(err, "vaccinations")
	}
	for rows.Next() {
		var (
			v        admin.Vaccination
			given    time.Time
			lotExpir *time.Time
		)
		if err := rows.Scan(&v.ID, &v.OrganizationID, &v.HealthSystemID, &v.SiteID, &v.SiteCode, &v.Kind, &v.CVX, &v.NDC,
			&given, &v.Historical, &v.InfoSource, &v.Amount, &v.AmountUnits, &v.Lot, &lotExpir,
			&v.MVX, &v.Route, &v.BodySite, &v.CompletionStatus, &v.ActionCode, &v.RefusalReason, &v.Deleted); err != nil {
			rows.Close()
			return nil, admErr(err, "vaccinations")
		}
		v.AdministeredOn = admin.DateOf(given)
		v.LotExpiration = dateOf(lotExpir)
		p.Vaccinations = append(p.Vaccinations, v)
	}
	if err := rows.Err(); err != nil {
		return nil, admErr(err, "vaccinations")
	}
	rows, err = s.q.Query(ctx, `
		SELECT id, registry_patient_id, coalesce(old_status, ''), new_status, source, reason, form_ref, user_id, changed_at
		FROM sharing_changes WHERE registry_patient_id = $1 ORDER BY changed_at, id`, id)
	if err != nil {
		return nil, admErr(err, "sharing history")
	}
	for rows.Next() {
		var (
			c          admin.SharingChange
			oldS, newS string
		)
		if err := rows.Scan(&c.ID, &c.RegistryPatientID, &oldS, &newS, &c.Source, &c.Reason, &c.FormRef, &c.UserID, &c.ChangedAt); err != nil {
			rows.Close()
			return nil, admErr(err, "sharing history")
		}
		c.OldStatus, c.NewStatus = admin.Sharing(strings.TrimSpace(oldS)), admin.Sharing(newS)
		p.History = append(p.History, c)
	}
	return p, admErr(rows.Err(), "sharing history")
}

// loadReports fills in each organization's report of the patients.
func (s *AdminStore) loadReports(ctx context.Context, ps []*admin.Patient) error {
	if len(ps) == 0 {
		return nil
	}
	ids := make([]int64, len(ps))
	byID := make(map[int64]*admin.Patient, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
		byID[p.ID] = p
	}
	rows, err := s.q.Query(ctx, `
		SELECT p.registry_patient_id, p.id, p.organization_id, o.code, coalesce(o.parent_id, o.id), p.id_value,
		       p.id_authority, p.id_type, p.family_name, p.given_name, p.middle_name, p.birth_date, p.sex, p.updated_at
		FROM patients p JOIN organizations o ON o.id = p.organization_id
		WHERE p.registry_patient_id = ANY($1) ORDER BY p.id`, ids)
	if err != nil {
		return admErr(err, "patient reports")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			regID int64
			r     admin.PatientReport
			birth *time.Time
		)
		if err := rows.Scan(&regID, &r.ID, &r.OrganizationID, &r.OrganizationCode, &r.HealthSystemID, &r.IDValue,
			&r.IDAuthority, &r.IDType, &r.FamilyName, &r.GivenName, &r.MiddleName, &birth, &r.Sex, &r.UpdatedAt); err != nil {
			return admErr(err, "patient reports")
		}
		r.BirthDate = dateOf(birth)
		p := byID[regID]
		p.Reports = append(p.Reports, r)
	}
	return admErr(rows.Err(), "patient reports")
}

// SearchPatients finds registry patients by family name (case-insensitive), birth date and an
// optional given-name prefix.
func (s *AdminStore) SearchPatients(ctx context.Context, q admin.PatientQuery) ([]admin.Patient, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.q.Query(ctx, patientSelect+`
		WHERE env = $1 AND birth_date = $2 AND lower(family_name) = lower($3)
		  AND ($4 = '' OR starts_with(lower(given_name), lower($4)))
		ORDER BY id LIMIT $5`, q.Env, dateArg(q.BirthDate), q.FamilyName, q.GivenName, limit)
	if err != nil {
		return nil, admErr(err, "search patients")
	}
	var ptrs []*admin.Patient
	for rows.Next() {
		p, err := scanPatient(rows)
		if err != nil {
			rows.Close()
			return nil, admErr(err, "search patients")
		}
		ptrs = append(ptrs, p)
	}
	if err := rows.Err(); err != nil {
		return nil, admErr(err, "search patients")
	}
	if err := s.loadReports(ctx, ptrs); err != nil {
		return nil, err
	}
	out := make([]admin.Patient, len(ptrs))
	for i, p := range ptrs {
		out[i] = *p
	}
	return out, nil
}

// RecordSharingChange sets the status and records the change.
func (s *AdminStore) RecordSharingChange(ctx context.Context, c *admin.SharingChange) error {
	return s.atomic(ctx, func(t *AdminStore) error {
		if err := t.exec1(ctx, fmt.Sprintf("patient %d", c.RegistryPatientID),
			`UPDATE registry_patients SET sharing = $2, updated_at = $3 WHERE id = $1`,
			c.RegistryPatientID, string(c.NewStatus), c.ChangedAt); err != nil {
			return err
		}
		var old any
		if c.OldStatus != "" {
			old = string(c.OldStatus)
		}
		err := t.q.QueryRow(ctx, `
			INSERT INTO sharing_changes (registry_patient_id, old_status, new_status, source, reason, form_ref, user_id, changed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			c.RegistryPatientID, old, string(c.NewStatus), c.Source, c.Reason, c.FormRef, c.UserID, c.ChangedAt).Scan(&c.ID)
		return admErr(err, "record sharing change")
	}, false)
}
