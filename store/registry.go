package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// storeVXU applies the registry semantics of SPEC §2.6 to one accepted message: the patient as
// known to the sending organization, its link to a registry patient, the data-sharing status,
// next of kin, observations and the vaccinations with their RXA-21 actions.
func storeVXU(ctx context.Context, tx pgx.Tx, rec *ingest.Record, msgID int64) error {
	v := rec.VXU
	pt := &v.Patient
	id := pt.PrimaryID()
	if id.Value == "" {
		return errors.New("store: patient has no identifier")
	}
	name := pt.LegalName()
	birth := parseDate(pt.BirthDate)
	zip := ""
	if len(pt.Addresses) > 0 {
		zip = pt.Addresses[0].Zip
	}
	demo, err := json.Marshal(pt)
	if err != nil {
		return fmt.Errorf("store: encode patient: %w", err)
	}
	orgID := rec.Sender.OrganizationID

	var patientID, regID int64
	err = tx.QueryRow(ctx, `SELECT id, registry_patient_id FROM patients
		WHERE env = $1 AND organization_id = $2 AND id_value = $3 AND id_authority = $4 AND id_type = $5
		FOR UPDATE`, rec.Env, orgID, id.Value, id.Authority, id.Type).Scan(&patientID, &regID)
	newPatient := errors.Is(err, pgx.ErrNoRows)
	if err != nil && !newPatient {
		return fmt.Errorf("store: find patient: %w", err)
	}
	if newPatient {
		regID, err = linkRegistryPatient(ctx, tx, rec, name, birth, zip, msgID)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type,
				registry_patient_id, family_name, given_name, middle_name, birth_date, sex, mother_maiden,
				postal_code, protection, demographics, last_message_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			RETURNING id`,
			rec.Env, orgID, id.Value, id.Authority, id.Type, regID, name.Family, name.Given, name.Middle,
			birth, pt.Sex, pt.MotherMaiden.Family, zip, pt.Protection, demo, msgID).Scan(&patientID)
		if err != nil {
			return fmt.Errorf("store: insert patient: %w", err)
		}
	} else {
		if _, err := tx.Exec(ctx, `UPDATE patients SET family_name = $2, given_name = $3, middle_name = $4,
				birth_date = $5, sex = $6, mother_maiden = $7, postal_code = $8, protection = $9,
				demographics = $10, last_message_id = $11, updated_at = now()
			WHERE id = $1`,
			patientID, name.Family, name.Given, name.Middle, birth, pt.Sex, pt.MotherMaiden.Family, zip,
			pt.Protection, demo, msgID); err != nil {
			return fmt.Errorf("store: update patient: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE registry_patients SET family_name = $2, given_name = $3,
				middle_name = $4, birth_date = COALESCE($5, birth_date), sex = $6,
				mother_maiden = CASE WHEN $7 = '' THEN mother_maiden ELSE $7 END,
				postal_code = CASE WHEN $8 = '' THEN postal_code ELSE $8 END, updated_at = now()
			WHERE id = $1`,
			regID, name.Family, name.Given, name.Middle, birth, pt.Sex, pt.MotherMaiden.Family, zip); err != nil {
			return fmt.Errorf("store: update registry patient: %w", err)
		}
		if err := updateSharing(ctx, tx, rec, regID, msgID); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO patient_reports (patient_id, message_id, demographics)
		VALUES ($1, $2, $3)`, patientID, msgID, demo); err != nil {
		return fmt.Errorf("store: insert patient report: %w", err)
	}
	for _, nk := range v.NextOfKin {
		details, err := json.Marshal(nk)
		if err != nil {
			return fmt.Errorf("store: encode next of kin: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO next_of_kin (patient_id, message_id, set_id, relationship, details)
			VALUES ($1, $2, $3, $4, $5)`, patientID, msgID, atoi(nk.SetID), nk.Relationship.Code, details); err != nil {
			return fmt.Errorf("store: insert next of kin: %w", err)
		}
	}
	if err := insertObservations(ctx, tx, patientID, nil, msgID, v.Observations); err != nil {
		return err
	}
	for i := range v.Orders {
		if err := storeOrder(ctx, tx, rec, &v.Orders[i], patientID, regID, msgID); err != nil {
			return err
		}
	}
	return nil
}

// linkRegistryPatient finds the registry patient this newly seen sender patient is, by
// deterministic demographic rules, or creates one. Exactly one candidate with the same legal
// family and given name, birth date, compatible sex and mother's maiden name is linked; anything
// ambiguous gets a registry patient of its own.
func linkRegistryPatient(ctx context.Context, tx pgx.Tx, rec *ingest.Record, name ingest.Name, birth *time.Time, zip string, msgID int64) (int64, error) {
	pt := &rec.VXU.Patient
	if birth != nil && name.Family != "" && name.Given != "" {
		rows, err := tx.Query(ctx, `SELECT id FROM registry_patients
			WHERE env = $1 AND birth_date = $2 AND lower(family_name) = lower($3) AND lower(given_name) = lower($4)
			  AND (sex = $5 OR sex = '' OR $5 = '')
			  AND (mother_maiden = '' OR $6 = '' OR lower(mother_maiden) = lower($6))
			LIMIT 2`, rec.Env, birth, name.Family, name.Given, pt.Sex, pt.MotherMaiden.Family)
		if err != nil {
			return 0, fmt.Errorf("store: match registry patient: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, fmt.Errorf("store: match registry patient: %w", err)
		}
		if len(ids) == 1 {
			if err := updateSharing(ctx, tx, rec, ids[0], msgID); err != nil {
				return 0, err
			}
			return ids[0], nil
		}
	}
	status, source := initialSharing(rec)
	var regID int64
	err := tx.QueryRow(ctx, `INSERT INTO registry_patients (env, family_name, given_name, middle_name,
			birth_date, sex, mother_maiden, postal_code, sharing)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		rec.Env, name.Family, name.Given, name.Middle, birth, pt.Sex, pt.MotherMaiden.Family, zip, status).Scan(&regID)
	if err != nil {
		return 0, fmt.Errorf("store: insert registry patient: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sharing_changes (registry_patient_id, old_status, new_status, source, reason, message_id)
		VALUES ($1, NULL, $2, $3, $4, $5)`, regID, status, source, sharingReason(rec, status), msgID); err != nil {
		return 0, fmt.Errorf("store: record sharing status: %w", err)
	}
	return regID, nil
}

// initialSharing is the data-sharing status of a registry patient first known from rec.
func initialSharing(rec *ingest.Record) (status, source string) {
	if rec.Sharing.HonorPD1 {
		switch rec.VXU.Patient.Protection {
		case "Y":
			return "N", "hl7"
		case "N":
			return "Y", "hl7"
		}
	}
	if rec.Sharing.PreGoLive || !hasAdministered(rec.VXU) {
		return "U", "policy"
	}
	return "Y", "policy"
}

func sharingReason(rec *ingest.Record, status string) string {
	switch {
	case rec.Sharing.HonorPD1 && rec.VXU.Patient.Protection != "":
		return "PD1-12 = " + rec.VXU.Patient.Protection
	case status == "U" && rec.Sharing.PreGoLive:
		return "reported before the site's go-live date"
	case status == "U":
		return "historical reports only, no immunization encounter"
	}
	return "default"
}

func hasAdministered(v *ingest.VXU) bool {
	for i := range v.Orders {
		o := &v.Orders[i]
		if !o.Historical() && o.CompletionStatus != "RE" && o.ActionCode != "D" {
			return true
		}
	}
	return false
}

// updateSharing applies what a later message may change of an existing registry patient's status:
// PD1-12 where the policy honours it, and Unknown resolved to Yes by an immunization encounter
// reported after go-live.
func updateSharing(ctx context.Context, tx pgx.Tx, rec *ingest.Record, regID, msgID int64) error {
	var current string
	if err := tx.QueryRow(ctx, `SELECT sharing FROM registry_patients WHERE id = $1 FOR UPDATE`, regID).Scan(&current); err != nil {
		return fmt.Errorf("store: read sharing status: %w", err)
	}
	next, source, reason := current, "", ""
	switch {
	case rec.Sharing.HonorPD1 && rec.VXU.Patient.Protection == "Y":
		next, source, reason = "N", "hl7", "PD1-12 = Y"
	case rec.Sharing.HonorPD1 && rec.VXU.Patient.Protection == "N":
		next, source, reason = "Y", "hl7", "PD1-12 = N"
	case current == "U" && !rec.Sharing.PreGoLive && hasAdministered(rec.VXU):
		next, source, reason = "Y", "policy", "immunization encounter reported"
	}
	if next == current {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE registry_patients SET sharing = $2, updated_at = now() WHERE id = $1`, regID, next); err != nil {
		return fmt.Errorf("store: update sharing status: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sharing_changes (registry_patient_id, old_status, new_status, source, reason, message_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, regID, current, next, source, reason, msgID); err != nil {
		return fmt.Errorf("store: record sharing change: %w", err)
	}
	return nil
}

// storeOrder applies one order group: identity by sender + ORC-3, else patient + CVX + date;
// RXA-21 D marks the vaccination entered in error; A and U add or update; an administered report
// wins over a historical one of the same dose.
func storeOrder(ctx context.Context, tx pgx.Tx, rec *ingest.Record, o *ingest.Order, patientID, regID, msgID int64) error {
	date := parseDate(o.AdministeredAt)
	if date == nil {
		return nil // validation rejects such a group; nothing to identify the dose by
	}
	kind := "dose"
	switch {
	case o.CompletionStatus == "RE":
		kind = "refusal"
	case o.CVX == "998":
		if !hasImmunityEvidence(o) {
			return nil // "no vaccine administered" without evidence of immunity is not a record
		}
		kind = "immunity"
	}
	obs := o.Observations
	oc := *o
	oc.Observations = nil
	details, err := json.Marshal(oc)
	if err != nil {
		return fmt.Errorf("store: encode vaccination: %w", err)
	}
	historical := o.Historical()
	var filler *string
	if o.FillerOrder != "" {
		filler = &o.FillerOrder
	}

	var vid int64
	var wasHistorical bool
	found := false
	if filler != nil {
		err := tx.QueryRow(ctx, `SELECT id, historical FROM vaccinations
			WHERE env = $1 AND organization_id = $2 AND filler_order_id = $3 FOR UPDATE`,
			rec.Env, rec.Sender.OrganizationID, *filler).Scan(&vid, &wasHistorical)
		if err == nil {
			found = true
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: find vaccination by order: %w", err)
		}
	}
	if !found {
		err := tx.QueryRow(ctx, `SELECT id, historical FROM vaccinations
			WHERE patient_id = $1 AND cvx = $2 AND ndc = $3 AND administered_on = $4 AND kind = $5 AND NOT deleted
			ORDER BY id LIMIT 1 FOR UPDATE`,
			patientID, o.CVX, o.NDC, date, kind).Scan(&vid, &wasHistorical)
		if err == nil {
			found = true
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: find vaccination: %w", err)
		}
	}
	if !found && kind == "dose" && o.ActionCode != "D" {
		// The same dose reported by another organization, once as given and once as historical.
		err := tx.QueryRow(ctx, `SELECT id, historical FROM vaccinations
			WHERE registry_patient_id = $1 AND cvx = $2 AND cvx <> '' AND administered_on = $3 AND kind = 'dose'
			  AND NOT deleted AND historical <> $4
			ORDER BY id LIMIT 1 FOR UPDATE`, regID, o.CVX, date, historical).Scan(&vid, &wasHistorical)
		if err == nil {
			found = true
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: find same dose: %w", err)
		}
	}

	switch {
	case o.ActionCode == "D":
		if !found {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE vaccinations SET deleted = true, deleted_at = now(),
			last_message_id = $2, action_code = 'D', updated_at = now() WHERE id = $1`, vid, msgID); err != nil {
			return fmt.Errorf("store: delete vaccination: %w", err)
		}
	case found && wasHistorical == false && historical:
		// The administered report wins: keep it, remember the historical one in the reports.
	case found:
		if _, err := tx.Exec(ctx, `UPDATE vaccinations SET patient_id = $2, organization_id = $3, site_id = $4,
				filler_order_id = COALESCE(filler_order_id, $5), kind = $6, cvx = $7, ndc = $8, administered_on = $9,
				historical = $10, info_source = $11, amount = $12, amount_units = $13, lot = $14,
				lot_expiration = $15, mvx = $16, route = $17, body_site = $18, completion_status = $19,
				action_code = $20, refusal_reason = $21, details = $22, last_message_id = $23,
				deleted = false, deleted_at = NULL, updated_at = now()
			WHERE id = $1`,
			vid, patientID, rec.Sender.OrganizationID, rec.Sender.SiteID, filler, kind, o.CVX, o.NDC, date,
			historical, o.InfoSource.Code, o.Amount, o.Units.Code, firstLot(o), parseDate(o.LotExpiration),
			o.Manufacturer.Code, o.Route.Code, o.BodySite.Code, o.CompletionStatus, o.ActionCode,
			o.RefusalReason.Code, details, msgID); err != nil {
			return fmt.Errorf("store: update vaccination: %w", err)
		}
	default:
		if err := tx.QueryRow(ctx, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id,
				site_id, filler_order_id, kind, cvx, ndc, administered_on, historical, info_source, amount,
				amount_units, lot, lot_expiration, mvx, route, body_site, completion_status, action_code,
				refusal_reason, details, first_message_id, last_message_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
				$21, $22, $23, $24, $24) RETURNING id`,
			rec.Env, patientID, regID, rec.Sender.OrganizationID, rec.Sender.SiteID, filler, kind, o.CVX, o.NDC,
			date, historical, o.InfoSource.Code, o.Amount, o.Units.Code, firstLot(o), parseDate(o.LotExpiration),
			o.Manufacturer.Code, o.Route.Code, o.BodySite.Code, o.CompletionStatus, o.ActionCode,
			o.RefusalReason.Code, details, msgID).Scan(&vid); err != nil {
			return fmt.Errorf("store: insert vaccination: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vaccination_reports (vaccination_id, message_id, action_code, details)
		VALUES ($1, $2, $3, $4)`, vid, msgID, o.ActionCode, details); err != nil {
		return fmt.Errorf("store: insert vaccination report: %w", err)
	}
	return insertObservations(ctx, tx, patientID, &vid, msgID, obs)
}

// hasImmunityEvidence reports an OBX 59784-9 (disease with presumed immunity) in the group.
func hasImmunityEvidence(o *ingest.Order) bool {
	for _, ob := range o.Observations {
		if ob.Identifier.Code == "59784-9" {
			return true
		}
	}
	return false
}

func insertObservations(ctx context.Context, tx pgx.Tx, patientID int64, vid *int64, msgID int64, obs []ingest.Observation) error {
	for _, ob := range obs {
		details, err := json.Marshal(ob)
		if err != nil {
			return fmt.Errorf("store: encode observation: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO observations (patient_id, vaccination_id, message_id, set_id,
				value_type, code, code_system, value, value_system, sub_id, observed_on, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			patientID, vid, msgID, atoi(ob.SetID), ob.ValueType, ob.Identifier.Code, ob.Identifier.System,
			ob.Value.Code, ob.Value.System, ob.SubID, parseDate(ob.ObservedAt), details); err != nil {
			return fmt.Errorf("store: insert observation: %w", err)
		}
	}
	return nil
}

func firstLot(o *ingest.Order) string {
	if len(o.Lots) > 0 {
		return o.Lots[0]
	}
	return ""
}

// parseDate reads the date part of an HL7 DTM (YYYYMMDD...); nil when it is not a valid date.
func parseDate(s string) *time.Time {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return nil
	}
	t, err := time.Parse("20060102", s[:8])
	if err != nil {
		return nil
	}
	return &t
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e8 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
