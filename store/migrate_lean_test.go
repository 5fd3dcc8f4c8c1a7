package store_test

import (
	"context"
	"fmt"
	"testing"
)

// TestMigrateLeanKeepsEveryReport: a database of the old shape (migration 009), with patients,
// vaccinations and their report rows (patient_reports, vaccination_reports, next of kin,
// observations) and an accepted Latin-1 message, migrates to the lean shape (010) keeping every
// reference to what was reported, in order, with each vaccination report's order group; the
// copies and the report tables are gone, and the record reads back from the archive.
func TestMigrateLeanKeepsEveryReport(t *testing.T) {
	ctx := context.Background()
	db, exec := migratedTo(t, 9)
	msh := "MSH|^~\\&|EHR|FAC|VAXGATE|VAXGATE|20240101||VXU^V04^VXU_V04|%s|P|2.5.1\r"
	raw := func(ctrl, family string, groups ...string) []byte {
		s := fmt.Sprintf(msh, ctrl) + "PID|1||MRN-1^^^AUTH^MR||" + family + "^Ana||20200101|F\rNK1|1|Doe^Mary|MTH\r"
		for _, g := range groups {
			s += "ORC|RE||" + g + "^FAC\rRXA|0|1|20240101|20240101|08^HepB^CVX\rOBX|1|CE|64994-7^Funding^LN||V02^VFC^HL70064\r"
		}
		return []byte(s)
	}
	exec(`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG', 'Org')`)
	exec(`INSERT INTO sites (id, organization_id, code, name) VALUES (1, 1, 'SITE', 'Site')`)
	// Message 1 reports the patient and two doses; message 2 (Latin-1, undeclared) reports the
	// patient again and updates the second dose, its group 1; message 3 deletes the first dose.
	for i, r := range [][]byte{raw("C1", "Smith", "O1", "O2"), raw("C2", "Sm\xefth", "O2"), raw("C3", "Smith", "O1")} {
		exec(`INSERT INTO messages (id, env, site_id, transport, control_id, received_at, raw, ack, ack_code)
			VALUES ($1, 'P', 1, 'mllp', $2, now(), $3, '\x00', 'AA')`, i+1, fmt.Sprintf("C%d", i+1), r)
	}
	exec(`INSERT INTO registry_patients (id, env, family_name, given_name) VALUES (1, 'P', 'Smith', 'Ana')`)
	exec(`INSERT INTO patients (id, env, organization_id, id_value, id_authority, id_type, registry_patient_id,
		family_name, given_name, demographics, last_message_id) VALUES (1, 'P', 1, 'MRN-1', 'AUTH', 'MR', 1, 'Smith', 'Ana', '{}', 3)`)
	for _, m := range []int{1, 2, 3} {
		exec(`INSERT INTO patient_reports (patient_id, message_id, demographics) VALUES (1, $1, '{}')`, m)
		exec(`INSERT INTO next_of_kin (patient_id, message_id, details) VALUES (1, $1, '{}')`, m)
	}
	exec(`INSERT INTO vaccinations (id, env, patient_id, registry_patient_id, organization_id, site_id, filler_order_id,
		cvx, administered_on, historical, details, first_message_id, last_message_id, deleted)
		VALUES (1, 'P', 1, 1, 1, 1, 'O1^FAC', '08', '2024-01-01', false, '{"group": 1}', 1, 3, true),
		       (2, 'P', 1, 1, 1, 1, 'O2^FAC', '08', '2024-01-01', false, '{"group": 1}', 1, 2, false),
		       (3, 'P', 1, 1, 1, 1, NULL, '20', '2024-01-01', false, '{"group": 4}', 2, 2, false)`)
	for _, r := range []struct{ v, m, g int }{{1, 1, 1}, {2, 1, 2}, {2, 2, 1}, {1, 3, 1}} {
		exec(`INSERT INTO vaccination_reports (vaccination_id, message_id, action_code, details) VALUES ($1, $2, 'A', $3)`,
			r.v, r.m, fmt.Sprintf(`{"group": %d}`, r.g))
		exec(`INSERT INTO observations (patient_id, vaccination_id, message_id, code, details) VALUES (1, $1, $2, '64994-7', '{}')`, r.v, r.m)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate to the lean shape: %v", err)
	}
	var pm []int64
	if err := db.Pool.QueryRow(ctx, `SELECT report_messages FROM patients WHERE id = 1`).Scan(&pm); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pm) != "[1 2 3]" {
		t.Errorf("patient reports %v, want [1 2 3]", pm)
	}
	for _, c := range []struct {
		id           int
		msgs, groups string
	}{{1, "[1 3]", "[1 1]"}, {2, "[1 2]", "[2 1]"}, {3, "[2]", "[4]"}} {
		var msgs []int64
		var groups []int16
		if err := db.Pool.QueryRow(ctx, `SELECT report_messages, report_groups FROM vaccinations WHERE id = $1`, c.id).Scan(&msgs, &groups); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(msgs) != c.msgs || fmt.Sprint(groups) != c.groups {
			t.Errorf("vaccination %d: reports %v groups %v, want %s %s", c.id, msgs, groups, c.msgs, c.groups)
		}
	}
	var charsets []string
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(coalesce(charset, '-') ORDER BY id) FROM messages`).Scan(&charsets); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(charsets) != "[- windows-1252 -]" {
		t.Errorf("archived charsets %v: the Latin-1 message must name the fallback it was read with", charsets)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
		AND table_name IN ('patient_reports', 'vaccination_reports', 'next_of_kin', 'observations')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d report tables left (%v)", left, err)
	}
	var fks int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE contype = 'f'
		AND conrelid IN ('messages'::regclass, 'patients'::regclass, 'vaccinations'::regclass, 'registry_patients'::regclass)`).Scan(&fks); err != nil || fks != 0 {
		t.Errorf("%d foreign keys left on the intake tables (%v)", fks, err)
	}

	rec, err := db.PatientRecord(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Senders) != 1 || rec.Senders[0].Reports != 3 || rec.Senders[0].Demographics.LegalName().Family != "Smith" ||
		len(rec.Senders[0].NextOfKin) != 1 {
		t.Errorf("sender patient read back %+v", rec.Senders)
	}
	if len(rec.Vaccinations) != 2 {
		t.Fatalf("%d vaccinations shown, want 2 (1 is deleted)", len(rec.Vaccinations))
	}
	v := rec.Vaccinations[0]
	if v.ID != 2 || v.Reports != 2 || v.Details.FillerOrder != "O2^FAC" || len(v.Observations) != 1 {
		t.Errorf("vaccination 2 read back %+v", v)
	}
}
