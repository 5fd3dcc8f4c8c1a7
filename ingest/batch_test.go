package ingest_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestRegistryBatchEqualsSequential: the writer applies a batch's records against what it read
// for the whole batch up front, kept up to date in memory as each record writes (store's batch
// view). Whatever the batching, the registry must end up exactly as if every message had been
// written alone, one after the other. The same traffic — synthetic messages from two
// organizations reporting the same children (linking), with repeats and updates, and messages
// that exercise every rule (name changes, deletions, historical and administered reports of one
// dose, refusals, immunity, a reused order number, ambiguous links, resends, data sharing) — is
// written once a message at a time and once as a single batch, and the two databases are compared
// row by row, by natural keys.
func TestRegistryBatchEqualsSequential(t *testing.T) {
	msgs := batchTraffic()
	seq := runTraffic(t, msgs, store.WriterOptions{MaxBatch: 1, Shards: 1}, true)
	one := runTraffic(t, msgs, store.WriterOptions{MaxBatch: 4096, MaxDelay: 3 * time.Second, Shards: 1}, false)
	// The traffic reaches what it is meant to exercise.
	has := func(what string, match func(row string) bool) {
		for _, r := range seq {
			if match(r) {
				return
			}
		}
		t.Errorf("the traffic has no %s", what)
	}
	has("linked registry patient", func(r string) bool { return strings.HasPrefix(r, "registry ") && strings.Contains(r, ",") })
	has("review of a possible duplicate", func(r string) bool { return strings.Contains(r, "|possible-duplicate|") })
	has("review of a reused order number", func(r string) bool { return strings.Contains(r, "|order-number-conflict|") })
	has("deleted vaccination", func(r string) bool { return strings.HasPrefix(r, "vaccination ") && strings.Contains(r, "|D|") })
	has("merged report", func(r string) bool {
		f := strings.Split(r, "|")
		return strings.HasPrefix(r, "vaccination ") && len(f) > 2 && strings.HasPrefix(f[len(f)-2], "ORG-")
	})
	has("resend", func(r string) bool { return strings.HasPrefix(r, "message ") && strings.Contains(r, "#2 ") })
	has("rejected message", func(r string) bool { return strings.HasPrefix(r, "message ") && strings.Contains(r, "AR|f|") })
	has("sharing change", func(r string) bool { return strings.HasPrefix(r, "sharing ") && strings.Contains(r, " U|Y|") })
	has("update (RXA-21 U)", func(r string) bool { return strings.HasPrefix(r, "vaccination ") && strings.Contains(r, "|U|") })
	has("control ID reused for another message (205)", func(r string) bool { return strings.HasPrefix(r, "message ") && strings.Contains(r, `"code":205`) })
	has("deletion of an unknown vaccination (204)", func(r string) bool { return strings.HasPrefix(r, "message ") && strings.Contains(r, `"code":204`) })
	a, b := strings.Join(seq, "\n"), strings.Join(one, "\n")
	if a == b {
		return
	}
	sa, sb := map[string]int{}, map[string]int{}
	for _, r := range seq {
		sa[r]++
	}
	for _, r := range one {
		sb[r]++
	}
	n := 0
	for r, c := range sa {
		if sb[r] != c && n < 20 {
			t.Errorf("written alone, not in one batch: %s", r)
			n++
		}
	}
	for r, c := range sb {
		if sa[r] != c && n < 40 {
			t.Errorf("in one batch, not written alone: %s", r)
			n++
		}
	}
	t.Fatalf("registries differ (%d and %d rows)", len(seq), len(one))
}

// trafficMsg is one message of the comparison's traffic and the site it comes from.
type trafficMsg struct {
	site string
	raw  []byte
}

func batchTraffic() []trafficMsg {
	var out []trafficMsg
	add := func(site string, raw []byte) { out = append(out, trafficMsg{site, raw}) }
	// Two organizations reporting the same small population: the same children, hence linking,
	// repeats, updates and historical reports of doses the other organization gave.
	now := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	ga := vxugen.New(vxugen.Options{Seed: 7, ControlIDs: "GA", Patients: 40, Facility: "FAC-A", Now: now, UpdateShare: 0.15})
	gb := vxugen.New(vxugen.Options{Seed: 7, ControlIDs: "GB", Patients: 40, Facility: "FAC-B", Now: now, UpdateShare: 0.15})
	for i := 0; i < 120; i++ {
		add("A", ga.Next())
		add("B", gb.Next())
	}
	mk := func(site, ctrl string, c child, doses ...dose) {
		add(site, vxu(ctrl, "FAC-"+site, "P", c, doses...))
	}
	with := func(d dose, f func(*dose)) dose { f(&d); return d }
	kid := child{mrn: "K-1", family: "Müller", given: "Jürgen", mother: "O'Brien", dob: "20190402", sex: "M", street: "12 Elm Street", zip: "01101"}
	// The same child from B (linked by mother's maiden name), then a name change at A.
	kidB := kid
	kidB.mrn = "KB-1"
	mk("A", "S-1", kid, hepB)
	mk("B", "S-2", kidB, with(hepB, func(d *dose) { d.order, d.historical = "", true }))
	renamed := kid
	renamed.family = "Mueller-Smith"
	mk("A", "S-3", renamed, dose{order: "ORD-2^CLINIC", date: "20240310", cvx: "20", text: "DTaP"})
	// A new child in the block the renamed child moved to, and one in the block it left.
	twin := renamed
	twin.mrn, twin.mother, twin.street = "KC-1", "", ""
	mk("B", "S-4", twin, dose{date: "20240311", cvx: "03", text: "MMR"})
	left := kid
	left.mrn = "KB-2"
	mk("B", "S-5", left, dose{date: "20240312", cvx: "03", text: "MMR"})
	// Two candidates for one new child: a review, not a link.
	amb := child{mrn: "M-1", family: "Lee", given: "Kai", dob: "20200101", sex: "M"}
	mk("A", "S-6", amb, dose{date: "20240301", cvx: "08", text: "Hep B"})
	amb2 := amb
	amb2.mrn, amb2.mother = "M-2", "Park"
	mk("A", "S-7", amb2, dose{date: "20240302", cvx: "08", text: "Hep B"})
	amb3 := amb
	amb3.mrn = "MB-1"
	mk("B", "S-8", amb3, dose{date: "20240303", cvx: "08", text: "Hep B"})
	// Actions on doses reported earlier in the batch: update, update of the date, re-add, delete.
	mk("A", "S-9", kid, with(hepB, func(d *dose) { d.lot, d.action = "L2", "U" }))
	mk("A", "S-10", kid, with(hepB, func(d *dose) { d.date, d.action = "20240302", "U" }))
	mk("A", "S-11", kid, with(hepB, func(d *dose) { d.date, d.lot = "20240302", "L3" }))
	mk("A", "S-12", renamed, dose{order: "ORD-2^CLINIC", date: "20240310", cvx: "20", text: "DTaP", action: "D"})
	mk("A", "S-13", renamed, dose{order: "ORD-2^CLINIC", date: "20240310", cvx: "20", text: "DTaP"})
	noOrder := dose{date: "20240315", cvx: "03", text: "MMR", lot: "M1"}
	mk("A", "S-14", kid, noOrder)
	mk("A", "S-15", kid, with(noOrder, func(d *dose) { d.historical = true }))
	mk("A", "S-16", kid, with(noOrder, func(d *dose) { d.lot, d.action = "M2", "U" }))
	mk("A", "S-17", kid, with(noOrder, func(d *dose) { d.action = "D" }))
	mk("A", "S-18", kid, with(noOrder, func(d *dose) { d.action = "D" }))
	// An order number reused for another child.
	mk("A", "S-19", amb, dose{order: "ORD-2^CLINIC", date: "20240401", cvx: "20", text: "DTaP"})
	// Refusal, immunity, not administered.
	mk("B", "S-20", kidB, dose{order: "9999", date: "20240320", cvx: "03", text: "MMR", status: "RE", refusal: "00"})
	mk("B", "S-21", kidB, dose{order: "9999", date: "20240321", cvx: "998", text: "No vaccine administered",
		obx: []string{`1|CE|59784-9^Disease with presumed immunity^LN|1|38907003^Varicella infection^SCT||||||F`}})
	// Historical only (sharing Unknown), then an encounter (Yes).
	hist := child{mrn: "H-1", family: "Nguyen", given: "Luca", dob: "20180505", sex: "M"}
	mk("A", "S-22", hist, dose{date: "20190101", cvx: "08", text: "Hep B", historical: true})
	mk("A", "S-23", hist, dose{date: "20240301", cvx: "03", text: "MMR"})
	// A resend within the batch, and a repeated control ID with other content (another message:
	// stored, and warned 205).
	out = append(out, out[len(out)-1], out[len(out)-3])
	mk("A", "S-23", hist, dose{date: "20240302", cvx: "20", text: "DTaP"})
	// A rejected message (processing ID T from a production site), a message with a rejected order
	// group (unknown vaccine) and a message that names a patient with NK1 and OBX.
	add("A", vxu("S-24", "FAC-A", "T", hist, dose{date: "20240303", cvx: "20", text: "DTaP"}))
	mk("A", "S-24", hist, dose{date: "20240303", cvx: "99999", text: "Nothing"})
	nk := child{mrn: "N-1", family: "Okafor", given: "Ana", dob: "20210707", sex: "F", mother: "Eze", nk1Family: "Okafor", nk1Given: "Ngozi",
		patientOBX: []string{`1|CE|59784-9^Disease with presumed immunity^LN|1|38907003^Varicella infection^SCT||||||F`}}
	mk("B", "S-25", nk, dose{date: "20240301", cvx: "08", text: "Hep B"})
	// Update and deletion of orders the registry does not hold (warned 204, nothing changes), then
	// the order added, updated and deleted.
	unknown := dose{order: "ORD-404^CLINIC", date: "20240316", cvx: "20", text: "DTaP"}
	mk("A", "S-26", kid, with(unknown, func(d *dose) { d.action = "U" }))
	mk("A", "S-27", kid, with(unknown, func(d *dose) { d.action = "D" }))
	mk("A", "S-28", kid, unknown)
	mk("A", "S-29", kid, with(unknown, func(d *dose) { d.action, d.lot = "U", "L404" }))
	mk("A", "S-30", kid, with(unknown, func(d *dose) { d.action = "D" }))
	// More of the synthetic traffic after all that, over the same children.
	for i := 0; i < 60; i++ {
		add("A", ga.Next())
		add("B", gb.Next())
	}
	return out
}

// runTraffic writes msgs through a pipeline and writer with options o into a new database, one at a
// time (waiting for each ACK) or all started before any is awaited, and returns the registry as
// sorted rows of natural keys.
func runTraffic(t *testing.T, msgs []trafficMsg, o store.WriterOptions, oneByOne bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := storetest.New(t)
	senders := map[string]*ingest.Sender{}
	for i, site := range []string{"A", "B"} {
		var org, id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ($1, $1) RETURNING id`, "ORG-"+site).Scan(&org); err != nil {
			t.Fatal(err)
		}
		if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, $2, $2, 'production') RETURNING id`,
			org, "SITE-"+site).Scan(&id); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.%d", i+2)
		if _, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ($1, $2)`, "FAC-"+site, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr) VALUES ($1, 'mllp', $2::inet)`, id, addr+"/32"); err != nil {
			t.Fatal(err)
		}
		s, err := db.MLLPSender(ctx, netip.MustParseAddr(addr), "")
		if err != nil {
			t.Fatal(err)
		}
		senders[site] = s
	}
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	w, err := db.NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	v, err := validate.New(validate.Options{Now: func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: w, Validator: v, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var pending []ingest.Pending
	for _, m := range msgs {
		pd := p.Start(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Sender: senders[m.site], Payload: m.raw, ReceivedAt: time.Now()})
		if oneByOne {
			if _, err := pd.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		pending = append(pending, pd)
	}
	for _, pd := range pending {
		if _, err := pd.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !oneByOne {
		// The point of the run: everything in one transaction.
		var batches int
		if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM messages`).Scan(&batches); err != nil {
			t.Fatal(err)
		}
		if batches != 1 {
			t.Fatalf("the traffic was written in %d transactions, want 1", batches)
		}
	}
	rows, err := db.Pool.Query(ctx, registryDump)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// registryDump lists the registry by natural keys (organization and MRN, site and control ID, and
// so on) instead of ids, which depend on how ids were drawn.
const registryDump = `
WITH pk AS (
	SELECT p.id, o.code || ':' || p.id_value AS k, p.registry_patient_id AS rid
	FROM patients p JOIN organizations o ON o.id = p.organization_id),
rk AS (SELECT rid AS id, string_agg(k, ',' ORDER BY k) AS k FROM pk GROUP BY rid),
mk AS (
	SELECT m.id, COALESCE(s.code, '-') || ':' || m.control_id || '#' ||
		row_number() OVER (PARTITION BY m.site_id, m.control_id ORDER BY m.id) AS k
	FROM messages m LEFT JOIN sites s ON s.id = m.site_id),
vk AS (
	SELECT v.id, pk.k || ':' || v.kind || ':' || v.cvx || v.ndc || ':' || v.administered_on || ':' ||
		COALESCE(v.filler_order_id, '') || '#' ||
		row_number() OVER (PARTITION BY v.patient_id, v.kind, v.cvx, v.ndc, v.administered_on, v.filler_order_id ORDER BY v.id) AS k
	FROM vaccinations v JOIN pk ON pk.id = v.patient_id)
SELECT 'registry ' || rk.k || ' ' || concat_ws('|', r.env, r.family_name, r.given_name, r.middle_name, r.birth_date,
	r.sex, r.mother_maiden, r.postal_code, r.sharing)
	FROM registry_patients r JOIN rk ON rk.id = r.id
UNION ALL
SELECT 'patient ' || pk.k || ' ' || concat_ws('|', rk.k, p.env, p.family_name, p.given_name, p.middle_name, p.birth_date,
	p.sex, p.mother_maiden, p.postal_code, p.protection, p.match_family, p.match_given, p.match_mother, p.match_street,
	(SELECT string_agg(mk.k, ';' ORDER BY u.i) FROM unnest(p.report_messages) WITH ORDINALITY AS u(id, i) JOIN mk ON mk.id = u.id))
	FROM patients p JOIN pk ON pk.id = p.id JOIN rk ON rk.id = p.registry_patient_id
UNION ALL
SELECT 'vaccination ' || vk.k || ' ' || concat_ws('|', rk.k, v.historical, v.info_source, v.lot, v.mvx, v.completion_status,
	v.action_code, v.refusal_reason, v.deleted, v.dose_key, (SELECT s.code FROM sites s WHERE s.id = v.site_id), v.amount, v.amount_units, v.lot_expiration,
	v.route, v.body_site, into_k.k,
	(SELECT string_agg(mk.k || '/' || u.g, ';' ORDER BY u.i)
		FROM unnest(v.report_messages, v.report_groups) WITH ORDINALITY AS u(id, g, i) JOIN mk ON mk.id = u.id))
	FROM vaccinations v JOIN vk ON vk.id = v.id JOIN rk ON rk.id = v.registry_patient_id
	LEFT JOIN vk into_k ON into_k.id = v.merged_into
UNION ALL
SELECT 'message ' || mk.k || ' ' || concat_ws('|', m.env, m.ack_code, m.resend_key, m.findings::text, md5(m.raw), m.charset)
	FROM messages m JOIN mk ON mk.id = m.id
UNION ALL
SELECT 'sharing ' || rk.k || ' ' || concat_ws('|', c.old_status, c.new_status, c.source, c.reason, mk.k)
	FROM sharing_changes c JOIN rk ON rk.id = c.registry_patient_id LEFT JOIN mk ON mk.id = c.message_id
UNION ALL
SELECT 'review ' || concat_ws('|', x.env, x.kind, rk.k, pk.k, mk.k,
	(SELECT string_agg(k, ';' ORDER BY k) FROM rk c WHERE c.id = ANY (x.candidates)),
	(SELECT string_agg(k, ';' ORDER BY k) FROM vk c WHERE c.id = ANY (x.vaccination_ids)),
	regexp_replace(x.evidence::text, '"registry_patient_id": [0-9]+', '', 'g'))
	FROM registry_reviews x JOIN rk ON rk.id = x.registry_patient_id LEFT JOIN pk ON pk.id = x.patient_id
	LEFT JOIN mk ON mk.id = x.message_id
ORDER BY 1`
