package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/registry"
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
		INSERT INTO audit_log (at, actor_user_id, actor, action, target_type, target_id, site_ids, before, after, rule)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10) RETURNING id`,
		e.At, e.ActorUserID, e.Actor, e.Action, e.TargetType, e.TargetID, sites, before, after, e.Rule).Scan(&e.ID)
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
	sql := `SELECT id, at, actor_user_id, actor, action, target_type, target_id, site_ids, before, after, rule FROM audit_log`
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
			&e.SiteIDs, &before, &after, &e.Rule); err != nil {
			return nil, admErr(err, "list audit log")
		}
		e.Before, e.After = before, after
		out = append(out, e)
	}
	return out, admErr(rows.Err(), "list audit log")
}

// --- registry patients (read by the admin module) ---

// The admin module shows a registry patient as the registry's consolidated record does
// (readPatientRecord, the body of DB.PatientRecord): current vaccinations only, the other reports
// of a dose merged into the one shown, each with its source organization and site. The admin
// module applies the data-sharing rules to it.

// Patient returns a registry patient with reports, current vaccinations and sharing history,
// read in one snapshot (the current transaction inside Tx).
func (s *AdminStore) Patient(ctx context.Context, id int64) (*admin.Patient, error) {
	return s.patient(ctx, id, false)
}

// PatientForUpdate is Patient with the registry patient's row locked (inside Tx).
func (s *AdminStore) PatientForUpdate(ctx context.Context, id int64) (*admin.Patient, error) {
	return s.patient(ctx, id, true)
}

func (s *AdminStore) patient(ctx context.Context, id int64, lock bool) (*admin.Patient, error) {
	var p *admin.Patient
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		if lock && s.tx != nil {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM registry_patients WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
				return admErr(err, fmt.Sprintf("patient %d", id))
			}
		}
		var err error
		p, err = readAdminPatient(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// snapshot runs fn in the current transaction inside Tx (so that what it reads includes the
// transaction's writes and locks), else in a read-only repeatable-read transaction: one
// consistent snapshot.
func (s *AdminStore) snapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.tx != nil {
		return fn(s.tx)
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// readAdminPatient reads the consolidated record of a registry patient in tx and maps it to the
// admin module's types; the sharing history is read here too, for its ids.
func readAdminPatient(ctx context.Context, tx pgx.Tx, id int64) (*admin.Patient, error) {
	rec, err := readPatientRecord(ctx, tx, id)
	if errors.Is(err, ErrPatientNotFound) {
		return nil, admin.NotFound("patient %d not found", id)
	}
	if err != nil {
		return nil, err
	}
	p := adminPatient(rec)
	rows, err := tx.Query(ctx, `
		SELECT id, registry_patient_id, coalesce(old_status, ''), new_status, source, reason, form_ref, attestation, user_id, changed_at
		FROM sharing_changes WHERE registry_patient_id = $1 ORDER BY changed_at, id`, id)
	if err != nil {
		return nil, admErr(err, "sharing history")
	}
	for rows.Next() {
		var (
			c          admin.SharingChange
			oldS, newS string
		)
		if err := rows.Scan(&c.ID, &c.RegistryPatientID, &oldS, &newS, &c.Source, &c.Reason, &c.FormRef, &c.Attestation, &c.UserID, &c.ChangedAt); err != nil {
			rows.Close()
			return nil, admErr(err, "sharing history")
		}
		c.OldStatus, c.NewStatus = admin.Sharing(strings.TrimSpace(oldS)), admin.Sharing(strings.TrimSpace(newS))
		p.History = append(p.History, c)
	}
	return p, admErr(rows.Err(), "sharing history")
}

// adminPatient maps a consolidated record to the admin module's Patient (without the sharing
// history).
func adminPatient(r *PatientRecord) *admin.Patient {
	p := &admin.Patient{
		ID: r.ID, Env: r.Env, Sharing: admin.Sharing(r.Sharing),
		FamilyName: r.FamilyName, GivenName: r.GivenName, MiddleName: r.MiddleName,
		BirthDate: dateOf(r.BirthDate), Sex: r.Sex,
		Reports:      make([]admin.PatientReport, 0, len(r.Senders)),
		Vaccinations: make([]admin.Vaccination, 0, len(r.Vaccinations)),
		History:      []admin.SharingChange{},
	}
	for _, sp := range r.Senders {
		name := sp.Demographics.LegalName()
		p.Reports = append(p.Reports, admin.PatientReport{
			ID: sp.ID, OrganizationID: sp.OrganizationID, OrganizationCode: sp.OrganizationCode,
			HealthSystemID: sp.HealthSystemID, IDValue: sp.Identifier.Value, IDAuthority: sp.Identifier.Authority,
			IDType: sp.Identifier.Type, FamilyName: name.Family, GivenName: name.Given, MiddleName: name.Middle,
			BirthDate: dateOf(registry.ParseDate(sp.Demographics.BirthDate)), Sex: sp.Demographics.Sex, UpdatedAt: sp.UpdatedAt,
		})
	}
	for _, v := range r.Vaccinations {
		x := admin.Vaccination{
			ID: v.ID, OrganizationID: v.Source.OrganizationID, OrganizationCode: v.Source.OrganizationCode,
			HealthSystemID: v.Source.HealthSystemID, SiteID: v.Source.SiteID, SiteCode: v.Source.SiteCode,
			Kind: v.Kind, CVX: v.CVX, NDC: v.NDC, AdministeredOn: admin.DateOf(v.AdministeredOn),
			Historical: v.Historical, InfoSource: v.InfoSource, Amount: v.Amount, AmountUnits: v.AmountUnits,
			Lot: v.Lot, LotExpiration: dateOf(v.LotExpiration), MVX: v.MVX, Route: v.Route, BodySite: v.BodySite,
			CompletionStatus: v.CompletionStatus, ActionCode: v.ActionCode, RefusalReason: v.RefusalReason,
			OrderNumber: v.OrderNumber,
		}
		for _, m := range v.Merged {
			x.Merged = append(x.Merged, admin.MergedReport{
				VaccinationID: m.VaccinationID, OrganizationID: m.Source.OrganizationID,
				OrganizationCode: m.Source.OrganizationCode, HealthSystemID: m.Source.HealthSystemID,
				SiteID: m.Source.SiteID, SiteCode: m.Source.SiteCode, CVX: m.CVX, Historical: m.Historical,
				InfoSource: m.InfoSource,
			})
		}
		p.Vaccinations = append(p.Vaccinations, x)
	}
	return p
}

// SearchPatients finds registry patients by family name (case-insensitive), birth date and an
// optional given-name prefix, and reads each one's record, all in one snapshot.
func (s *AdminStore) SearchPatients(ctx context.Context, q admin.PatientQuery) ([]admin.Patient, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	out := []admin.Patient{}
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		sql, args := `SELECT id FROM registry_patients
			WHERE env = $1 AND birth_date = $2 AND lower(family_name) = lower($3)
			  AND ($4 = '' OR starts_with(lower(given_name), lower($4)))
			ORDER BY id LIMIT $5`, []any{q.Env, dateArg(q.BirthDate), q.FamilyName, q.GivenName, limit}
		if q.IDValue != "" { // by a reported identifier (PID-3), the name and birth date aside
			sql, args = `SELECT DISTINCT registry_patient_id FROM patients
				WHERE env = $1 AND id_value = $2 ORDER BY 1 LIMIT $3`, []any{q.Env, q.IDValue, limit}
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return admErr(err, "search patients")
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return admErr(err, "search patients")
		}
		for _, id := range ids {
			p, err := readAdminPatient(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, *p)
		}
		return nil
	})
	if err != nil {
		return nil, err
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
			INSERT INTO sharing_changes (registry_patient_id, old_status, new_status, source, reason, form_ref, attestation, user_id, changed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			c.RegistryPatientID, old, string(c.NewStatus), c.Source, c.Reason, c.FormRef, c.Attestation, c.UserID, c.ChangedAt).Scan(&c.ID)
		return admErr(err, "record sharing change")
	}, false)
}
