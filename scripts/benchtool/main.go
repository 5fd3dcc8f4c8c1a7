// Command benchtool supports scripts/bench.sh (make bench): it starts the one private PostgreSQL
// the benchmark runs against, and writes the pgbench script that measures PostgreSQL's own ceiling
// for the rows vaxgate writes per message. It is a development tool, not part of the product.
//
//	benchtool pg --dir DIR --url-file FILE     start PostgreSQL (durable defaults, plus $BENCH_PG_SETTINGS
//	                                           "k=v ..."), write its URL, wait for SIGTERM
//	benchtool ceiling --batch B --out FILE     write the pgbench script (B messages per transaction)
//	benchtool ceiling --minimal --batch B --setup FILE --out FILE
//	                                           the minimal durable record's tables (setup) and script
//	benchtool freeport                         print a free TCP port on 127.0.0.1
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store/pgembed"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool pg|ceiling [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pg":
		err = runPG(os.Args[2:])
	case "ceiling":
		err = writeCeiling(os.Args[2:])
	case "freeport":
		err = freePort()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// runPG starts a private PostgreSQL with pgembed's defaults (the durable ones vaxgate serve uses:
// fsync and synchronous_commit on), writes its URL to a file only the owner can read (it holds the
// password), and stops the server on SIGINT/SIGTERM. pgembed's parent-death signal stops it too if
// this process is killed.
func runPG(args []string) error {
	fs := flag.NewFlagSet("pg", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory (created)")
	urlFile := fs.String("url-file", "", "where to write the connection URL")
	maxConns := fs.String("max-connections", "200", "max_connections")
	stock := fs.Bool("stock", false, "PostgreSQL's stock settings (what a registry's own server starts with), not pgembed's tuned defaults")
	statements := fs.Bool("stat-statements", false, "load pg_stat_statements (the per-statement profile; costs a little)")
	_ = fs.Parse(args)
	if *dir == "" || *urlFile == "" {
		return fmt.Errorf("pg: --dir and --url-file are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	settings := map[string]string{"max_connections": *maxConns}
	if *stock {
		// pgembed's defaults that differ from PostgreSQL's own, set back (logging settings do not
		// change the work).
		settings = map[string]string{"max_connections": "100", "jit": "on", "wal_init_zero": "on", "shared_buffers": "128MB", "wal_compression": "off"}
	}
	for _, kv := range strings.Fields(os.Getenv("BENCH_PG_SETTINGS")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			settings[k] = v
		}
	}
	if *statements {
		settings["shared_preload_libraries"] = "pg_stat_statements"
		settings["pg_stat_statements.track"] = "all"
		settings["pg_stat_statements.track_planning"] = "on"
	}
	s, err := pgembed.Start(ctx, pgembed.Options{DataDir: *dir, Settings: settings})
	cancel()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*urlFile+".tmp", []byte(s.URL()+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(*urlFile+".tmp", *urlFile); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-s.Done():
		return fmt.Errorf("pg: PostgreSQL exited")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	return s.Stop(sctx)
}

// writeCeiling writes a pgbench script that, per transaction, inserts the rows vaxgate stores for
// batch accepted VXU messages of new patients, as the lean schema (migration 010) stores them: the
// archive row (raw message, ACK, findings), a registry patient, its initial data-sharing status, a
// sender patient and a vaccination, each referencing its report in the archive (the archive is the
// one copy of what was reported). The values are those of a real generated message, so row sizes
// and TOAST behaviour match. Statements are pipelined (\startpipeline), which is as fast
// as a client can send them; identifiers chain through currval(), so no statement waits for
// another's answer. Unique keys (control ID, patient identifier, order number) are made distinct
// from the sequences.
func writeCeiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	batch := fs.Int("batch", 64, "messages per transaction")
	out := fs.String("out", "", "script file")
	minimal := fs.Bool("minimal", false, "the minimal durable record of a VXU, on tables of its own (see writeMinimal)")
	setup := fs.String("setup", "", "with --minimal: where to write the SQL that creates its tables")
	setBased := fs.Bool("set-based", false, "with --minimal: one statement per table per transaction (multi-row, as vaxgate's writer writes), not one per row")
	_ = fs.Parse(args)
	if *out == "" || *batch < 1 {
		return fmt.Errorf("ceiling: --out and a positive --batch are required")
	}
	if *minimal {
		if *setup == "" {
			return fmt.Errorf("ceiling: --minimal needs --setup")
		}
		return writeMinimal(*batch, *setup, *out, *setBased)
	}
	gen := vxugen.New(vxugen.Options{Seed: 7, ControlIDs: "CEIL", Historical: 0.0001, UpdateShare: 0.0001})
	var raw []byte
	var v *ingest.VXU
	for i := 0; i < 100; i++ { // an administered dose, with its 4 observations
		raw = gen.Next()
		m, err := hl7.Parse(raw)
		if err != nil {
			return err
		}
		v = ingest.Decode(m)
		if len(v.Orders) == 1 && len(v.Orders[0].Observations) == 4 && len(v.NextOfKin) == 1 {
			break
		}
	}
	m, _ := hl7.Parse(raw)
	b := ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	ackMsg := b.Build(ack.HeaderOf(m), ack.AA, nil)
	o := v.Orders[0]

	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	hex := func(b []byte) string { return fmt.Sprintf("'\\x%x'::bytea", b) }
	// Patients spread over birth dates and names as a registry's are (and as vaxgate bench's are),
	// so that the linking indexes and the planner's statistics see realistic data.
	const (
		birth  = `'2008-01-01'::date + (currval('messages_id_seq') % 6570)::int`
		family = `'family' || (currval('messages_id_seq') % 40)`
		given  = `'given' || (currval('messages_id_seq') / 40 % 40)`
	)
	var w strings.Builder
	fmt.Fprintf(&w, "-- vaxgate ceiling: %d messages per transaction; raw %d bytes, ACK %d bytes.\n", *batch, len(raw), len(ackMsg))
	w.WriteString("-- Variables: -D site=ID -D org=ID (the demo site and its organization).\n")
	w.WriteString("\\startpipeline\nBEGIN;\n")
	for i := 0; i < *batch; i++ {
		// The archive row with its report facts (migration 014), as intake writes it.
		fmt.Fprintf(&w, `INSERT INTO messages (id, env, site_id, transport, control_id, sending_facility, message_type, received_at, raw, ack, ack_code, findings, resend_key, content_digest, readable, has_errors, has_warnings, finding_keys, administered, historical, refusals, immunity, with_lot, with_mvx, with_funding, with_vis, has_race, has_ethnicity, has_address, lag_1, lag_7, lag_30, lag_late, lag_days) VALUES (nextval('messages_id_seq'), 'P', :site, 'mllp', 'CEIL-' || currval('messages_id_seq'), 'X68', 'VXU^V04', now(), %s, %s, 'AA', '[]', true, sha256(int8send(currval('messages_id_seq'))), true, false, false, '{}', 1, 0, 0, 0, 1, 1, 1, 1, true, true, true, 0, 0, 0, 1, 36) ON CONFLICT (site_id, env, control_id, content_digest) WHERE resend_key AND site_id IS NOT NULL DO NOTHING;
`, hex(raw), hex(ackMsg))
		fmt.Fprintf(&w, `INSERT INTO registry_patients (env, family_name, given_name, middle_name, birth_date, sex, mother_maiden, postal_code, sharing) VALUES ('P', %s, %s, %s, %s, %s, %s, '02118', 'Y');
`, lit(v.Patient.LegalName().Family), lit(v.Patient.LegalName().Given), lit(v.Patient.LegalName().Middle), birth, lit(v.Patient.Sex), lit(v.Patient.MotherMaiden.Family))
		fmt.Fprintf(&w, `INSERT INTO sharing_changes (registry_patient_id, new_status, source, reason, message_id) VALUES (currval('registry_patients_id_seq'), 'Y', 'policy', 'default', currval('messages_id_seq'));
`)
		fmt.Fprintf(&w, `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type, registry_patient_id, family_name, given_name, middle_name, birth_date, sex, mother_maiden, postal_code, protection, report_messages, match_family, match_given, match_mother, match_street) VALUES ('P', :org, 'CEIL' || currval('registry_patients_id_seq'), 'BENCH-EHR', 'MR', currval('registry_patients_id_seq'), %s, %s, %s, %s, %s, %s, '02118', 'N', ARRAY[currval('messages_id_seq')], %s, %s, 'jones', '12 elm st');
`, lit(v.Patient.LegalName().Family), lit(v.Patient.LegalName().Given), lit(v.Patient.LegalName().Middle), birth, lit(v.Patient.Sex), lit(v.Patient.MotherMaiden.Family), family, given)
		fmt.Fprintf(&w, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, filler_order_id, kind, cvx, ndc, administered_on, historical, info_source, amount, amount_units, lot, lot_expiration, mvx, route, body_site, completion_status, action_code, refusal_reason, report_messages, report_groups, dose_key) VALUES ('P', currval('patients_id_seq'), currval('registry_patients_id_seq'), :org, :site, 'CEIL-O' || currval('patients_id_seq'), 'dose', %s, '', '2026-11-01', false, '00', '0.5', 'mL', %s, '2027-11-01', %s, 'C28161', 'LA', 'CP', 'A', '', ARRAY[currval('messages_id_seq')], '{1}', 'cvx' || chr(58) || '08');
`, lit(o.CVX), lit(firstOr(o.Lots)), lit(o.Manufacturer.Code))
	}
	w.WriteString("COMMIT;\n\\endpipeline\n")
	return os.WriteFile(*out, []byte(w.String()), 0o644)
}

// minimalSetup creates the minimal durable record's tables, independent of vaxgate's schema: the
// archive (raw message, ACK, findings; unique per site and control ID, as resends are found), the
// patients (unique per organization and identifier, upserted) and the vaccinations (two per
// message, found by patient).
const minimalSetup = `SET client_min_messages = warning;
DROP TABLE IF EXISTS min_vaccinations, min_patients, min_messages;
CREATE TABLE min_messages (
	id bigserial PRIMARY KEY, site_id bigint NOT NULL, control_id text NOT NULL,
	received_at timestamptz NOT NULL, raw bytea NOT NULL, ack bytea NOT NULL, findings jsonb NOT NULL,
	UNIQUE (site_id, control_id));
CREATE TABLE min_patients (
	id bigserial PRIMARY KEY, organization_id bigint NOT NULL, id_value text NOT NULL,
	family_name text NOT NULL, given_name text NOT NULL, birth_date date, sex text NOT NULL,
	postal_code text NOT NULL, last_message_id bigint NOT NULL REFERENCES min_messages,
	UNIQUE (organization_id, id_value));
CREATE TABLE min_vaccinations (
	id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES min_patients,
	message_id bigint NOT NULL REFERENCES min_messages, cvx text NOT NULL, administered_on date NOT NULL,
	lot text NOT NULL, segment int NOT NULL);
CREATE INDEX ON min_vaccinations (patient_id);
`

// writeMinimal writes the fixed ceiling of make bench: per message, the minimal durable record of
// an accepted VXU — the archive row with the raw message, its ACK and findings, a patient upsert
// and two vaccination rows — batch messages per transaction, pipelined, on tables of its own
// (minimalSetup), so that it does not move when vaxgate's schema does. Values come from a real
// generated message.
//
// setBased writes each transaction as one statement that inserts the batch's archive rows, upserts
// their patients and inserts their vaccinations, each table once, for all rows (the shape of
// vaxgate's own writer); otherwise each row has a statement of its own.
func writeMinimal(batch int, setup, out string, setBased bool) error {
	gen := vxugen.New(vxugen.Options{Seed: 7, ControlIDs: "CEIL", Historical: 0.0001, UpdateShare: 0.0001})
	raw := gen.Next()
	m, err := hl7.Parse(raw)
	if err != nil {
		return err
	}
	v := ingest.Decode(m)
	b := ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	ackMsg := b.Build(ack.HeaderOf(m), ack.AA, nil)
	findings, _ := json.Marshal([]ack.Finding{{Rule: "pd1-12-recorded", Location: ack.Location{Segment: "PD1", Sequence: 1, Field: 12},
		Code: ack.CodeAccepted, Severity: ack.Information, App: ack.AppDataWasIgnored, Text: "PD1-12 was recorded; data sharing is managed in the registry."}})
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	hex := func(b []byte) string { return fmt.Sprintf("'\\x%x'::bytea", b) }
	n := v.Patient.LegalName()
	cvx, lot := "08", "LOT1"
	if len(v.Orders) > 0 {
		cvx, lot = v.Orders[0].CVX, firstOr(v.Orders[0].Lots)
	}
	var w strings.Builder
	fmt.Fprintf(&w, "-- vaxgate minimal-record ceiling: %d messages per transaction; raw %d bytes, ACK %d bytes.\n", batch, len(raw), len(ackMsg))
	if setBased {
		fmt.Fprintf(&w, `WITH m AS (
	INSERT INTO min_messages (id, site_id, control_id, received_at, raw, ack, findings)
	SELECT id, 1, 'CEIL-' || id, now(), %s, %s, convert_from(%s, 'UTF8')::jsonb
	FROM (SELECT nextval('min_messages_id_seq') AS id FROM generate_series(1, %d)) s
	RETURNING id),
p AS (
	INSERT INTO min_patients (id, organization_id, id_value, family_name, given_name, birth_date, sex, postal_code, last_message_id)
	SELECT nextval('min_patients_id_seq'), 1, 'P' || m.id, %s, %s, '2008-01-01'::date + (m.id %% 6570)::int, %s, '02118', m.id FROM m
	ON CONFLICT (organization_id, id_value) DO UPDATE SET family_name = EXCLUDED.family_name, given_name = EXCLUDED.given_name, last_message_id = EXCLUDED.last_message_id
	RETURNING id, last_message_id)
INSERT INTO min_vaccinations (patient_id, message_id, cvx, administered_on, lot, segment)
SELECT p.id, p.last_message_id, %s, '2026-11-01', %s, g.segment FROM p, (VALUES (6), (7)) g(segment);
`, hex(raw), hex(ackMsg), hex(findings), batch, lit(n.Family), lit(n.Given), lit(v.Patient.Sex), lit(cvx), lit(lot))
		if err := os.WriteFile(setup, []byte(minimalSetup), 0o644); err != nil {
			return err
		}
		return os.WriteFile(out, []byte(w.String()), 0o644)
	}
	w.WriteString("\\startpipeline\nBEGIN;\n")
	for i := 0; i < batch; i++ {
		fmt.Fprintf(&w, `INSERT INTO min_messages (id, site_id, control_id, received_at, raw, ack, findings) VALUES (nextval('min_messages_id_seq'), 1, 'CEIL-' || currval('min_messages_id_seq'), now(), %s, %s, convert_from(%s, 'UTF8')::jsonb);
`, hex(raw), hex(ackMsg), hex(findings))
		fmt.Fprintf(&w, `INSERT INTO min_patients (id, organization_id, id_value, family_name, given_name, birth_date, sex, postal_code, last_message_id) VALUES (nextval('min_patients_id_seq'), 1, 'P' || currval('min_messages_id_seq'), %s, %s, '2008-01-01'::date + (currval('min_messages_id_seq') %% 6570)::int, %s, '02118', currval('min_messages_id_seq')) ON CONFLICT (organization_id, id_value) DO UPDATE SET family_name = EXCLUDED.family_name, given_name = EXCLUDED.given_name, last_message_id = EXCLUDED.last_message_id;
`, lit(n.Family), lit(n.Given), lit(v.Patient.Sex))
		for seg := 0; seg < 2; seg++ {
			fmt.Fprintf(&w, `INSERT INTO min_vaccinations (patient_id, message_id, cvx, administered_on, lot, segment) VALUES (currval('min_patients_id_seq'), currval('min_messages_id_seq'), %s, '2026-11-01', %s, %d);
`, lit(cvx), lit(lot), 6+seg)
		}
	}
	w.WriteString("COMMIT;\n\\endpipeline\n")
	if err := os.WriteFile(setup, []byte(minimalSetup), 0o644); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(w.String()), 0o644)
}

func firstOr(s []string) string {
	if len(s) > 0 {
		return s[0]
	}
	return ""
}

// freePort prints a port the kernel just handed out on 127.0.0.1 (free at that moment).
func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}
