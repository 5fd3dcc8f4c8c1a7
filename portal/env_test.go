package portal_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/admintest"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/portal"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMain gives the tests a real PostgreSQL (storetest) and cheap argon2id parameters (the
// production parameters are tested in package passwd).
func TestMain(m *testing.M) {
	passwd.DefaultParams = passwd.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	storetest.Main(m)
}

// password is every fixture user's password.
const password = "Correct-Horse-42"

// mailSink is a minimal SMTP server that keeps what it receives (the invitation emails).
type mailSink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
	wg   sync.WaitGroup
}

func startMail(t *testing.T) *mailSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mailSink{ln: ln}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); m.wg.Wait() })
	return m
}

func (m *mailSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	reply("220 test.invalid ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO", "HELO":
			reply("250 test.invalid")
		case "DATA":
			reply("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.mu.Lock()
			m.msgs = append(m.msgs, b.String())
			m.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

func (m *mailSink) messages() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.msgs...)
}

var linkRE = regexp.MustCompile(`https?://[^\s]+/api/v1/register\?token=[A-Za-z0-9_%-]+`)

// linkFor returns the registration link of the last email sent to addr.
func (m *mailSink) linkFor(t *testing.T, addr string) string {
	t.Helper()
	msgs := m.messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(msgs[i], "To: "+addr) {
			if l := linkRE.FindString(strings.ReplaceAll(msgs[i], "=\r\n", "")); l != "" {
				return l
			}
		}
	}
	t.Fatalf("no registration email to %s among %d", addr, len(msgs))
	return ""
}

// world is a running registry: a real server over a fresh database, with organizations,
// sites and users.
type world struct {
	t    *testing.T
	db   *store.DB
	svc  *admin.Service
	srv  *httptest.Server
	mail *mailSink
	sys  admin.Actor
	web  *portal.Portal
	// reports is the report service of the site's report pages.
	reports *report.Service
	// skew moves the Service's clock forward (a login throttle's wait passes at once).
	skew atomic.Int64

	acme, acme2, beta *admin.Site
	users             map[string]*admin.User
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, db: storetest.New(t), sys: admin.SystemActor("test"), users: map[string]*admin.User{}}
	w.mail = startMail(t)
	mux := http.NewServeMux()
	w.srv = httptest.NewUnstartedServer(mux)
	base := "http://" + w.srv.Listener.Addr().String()
	w.svc = admin.NewService(store.NewAdminStore(w.db), admin.Options{BaseURL: base,
		Now:  func() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) },
		SMTP: admin.SMTPConfig{Addr: w.mail.ln.Addr().String(), From: "registry@vaxgate.test", Timeout: 10 * time.Second}})
	w.reports = report.NewService(store.NewReportStore(w.db), report.Options{Workers: 2})
	p, err := portal.New(portal.Options{Service: w.svc, Intake: w.db, Reports: w.reports})
	if err != nil {
		t.Fatal(err)
	}
	w.web = p
	mux.Handle("/api/v1/", admin.NewHandler(w.svc, nil))
	mux.Handle("/", p)
	mux.Handle("GET /api/v1/register", p)
	w.srv.Start()
	t.Cleanup(w.srv.Close)
	w.seed()
	return w
}

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// seed: registry staff; Acme (a health system with a child clinic) and Beta; an Access
// Administrator and a Typical User at Acme, an Access Administrator at Beta.
func (w *world) seed() {
	ctx := context.Background()
	_, err := w.svc.BootstrapRegistryAdmin(ctx, w.sys, admin.NewUserInput{Username: "rstaff", FirstName: "Rita", LastName: "Staff",
		Email: "rita@registry.test"}, password)
	w.must(err)
	acme, err := w.svc.CreateOrganization(ctx, w.sys, admin.OrganizationInput{Code: "ACME", Name: "Acme Health"})
	w.must(err)
	_, err = w.svc.CreateOrganization(ctx, w.sys, admin.OrganizationInput{Code: "ACME-KIDS", Name: "Acme Kids Clinic", ParentID: acme.ID})
	w.must(err)
	_, err = w.svc.CreateOrganization(ctx, w.sys, admin.OrganizationInput{Code: "BETA", Name: "Beta Family Practice"})
	w.must(err)
	golive, _ := admin.ParseDate("2026-11-02")
	w.acme, err = w.svc.CreateSite(ctx, w.sys, admin.SiteInput{OrganizationCode: "ACME", Code: "ACME-01", Name: "Acme Pediatrics Downtown",
		Status: admin.SiteProduction, GoLive: golive, Facilities: []string{"ACME01"}})
	w.must(err)
	w.acme2, err = w.svc.CreateSite(ctx, w.sys, admin.SiteInput{OrganizationCode: "ACME-KIDS", Code: "ACME-02", Name: "Acme Kids Northside",
		Status: admin.SiteTesting, Facilities: []string{"ACME02"}})
	w.must(err)
	w.beta, err = w.svc.CreateSite(ctx, w.sys, admin.SiteInput{OrganizationCode: "BETA", Code: "BETA-01", Name: "Beta Family Practice",
		Status: admin.SiteProduction, GoLive: golive, Facilities: []string{"BETA01"}})
	w.must(err)
	w.user("aalvarez", "Ana", "Alvarez", w.acme, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	w.user("tnguyen", "Tam", "Nguyen", w.acme, admin.RoleTypicalUser)
	w.user("bbrown", "Bea", "Brown", w.beta, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	w.user("rreader", "Ray", "Reader", w.acme, admin.RoleReadOnly)
}

// user creates an active user through the real flow (invitation, registration).
func (w *world) user(username, first, last string, site *admin.Site, role admin.Role, ds ...admin.Designation) *admin.User {
	w.t.Helper()
	ctx := context.Background()
	inv, err := w.svc.Invite(ctx, w.sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: username, FirstName: first,
		LastName: last, Email: username + "@clinic.test"}, SiteID: site.ID, Role: role, Designations: ds, SkipEmail: true})
	w.must(err)
	tok := inv.Link[strings.Index(inv.Link, "token=")+len("token="):]
	u, err := w.svc.Register(ctx, tok, password, true)
	w.must(err)
	w.users[username] = u
	return u
}

// patient inserts a registry patient reported by site (one report, one vaccination per site),
// as the pipeline stores them.
func (w *world) patient(family, given, birth string, sharing admin.Sharing, mrn string, site *admin.Site) int64 {
	w.t.Helper()
	ctx := context.Background()
	var reg, msg, pat int64
	w.must(w.db.Pool.QueryRow(ctx, `INSERT INTO registry_patients (env, family_name, given_name, birth_date, sex, sharing)
		VALUES ('P', $1, $2, $3, 'F', $4) RETURNING id`, family, given, birth, string(sharing)).Scan(&reg))
	w.must(w.db.Pool.QueryRow(ctx, `INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code)
		VALUES ('P', $1, 'mllp', $2, now(), $3, '\x00', 'AA') RETURNING id`, site.ID, fmt.Sprintf("PAT-%d", reg),
		admintest.SeedVXU(mrn, family, given, birth, "08", "20", "10")).Scan(&msg))
	w.must(w.db.Pool.QueryRow(ctx, `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type, registry_patient_id,
		family_name, given_name, birth_date, sex, report_messages) VALUES ('P', $1, $2, 'AUTH', 'MR', $3, $4, $5, $6::date, 'F',
		ARRAY[$7::bigint]) RETURNING id`,
		site.OrganizationID, mrn, reg, family, given, birth, msg).Scan(&pat))
	for i, cvx := range []string{"08", "20", "10"} {
		_, err := w.db.Pool.Exec(ctx, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, cvx,
			administered_on, historical, lot, mvx, report_messages, report_groups)
			VALUES ('P', $1, $2, $3, $4, $5, $6::date, false, $7, 'MSD', ARRAY[$8::bigint], ARRAY[$9::int2])`,
			pat, reg, site.OrganizationID, site.ID, cvx, fmt.Sprintf("2024-0%d-15", i+3), fmt.Sprintf("LOT%d%s", i, site.Code), msg, i+1)
		w.must(err)
	}
	return reg
}

// messages inserts intake traffic for a site over the last days: a mix of ACK codes and
// environments, with findings.
func (w *world) messages(site *admin.Site, days int) {
	w.t.Helper()
	ctx := context.Background()
	findings := []string{
		`[{"rule":"msh-21-missing","code":101,"severity":"W","text":"MSH-21 (Message Profile Identifier) is empty. Send Z22^CDCPHINVS."}]`,
		`[{"rule":"rxa-3-after-message","code":102,"severity":"W","text":"RXA-3 (administration date) is later than the message date. Check both dates and the time zone."}]`,
		`[{"rule":"rxa-5-cvx-999","code":103,"severity":"E","text":"RXA-5 is CVX 999 (unknown vaccine): send the CVX code of the vaccine given."}]`,
		`[]`,
	}
	now := time.Now().UTC()
	n := 0
	for d := days - 1; d >= 0; d-- {
		perDay := 3 + (d*7)%11
		for i := 0; i < perDay; i++ {
			n++
			code, f := "AA", findings[3]
			switch {
			case i%9 == 4:
				code, f = "AR", findings[2]
			case i%4 == 1:
				code, f = "AE", findings[0]
			case i%6 == 2:
				code, f = "AE", findings[1]
			}
			env := "P"
			if i%5 == 3 {
				env = "T"
			}
			at := now.AddDate(0, 0, -d).Add(-time.Duration(i) * time.Minute)
			_, err := w.db.Pool.Exec(ctx, `INSERT INTO messages (env, site_id, transport, control_id, sending_facility, message_type,
				received_at, raw, ack, ack_code, findings, resend_key) VALUES ($1, $2, $3, $4, $5, 'VXU^V04^VXU_V04', $6, '\x00', '\x00', $7, $8, false)`,
				env, site.ID, []string{"mllp", "soap"}[i%2], fmt.Sprintf("MSG%05d", n), site.Facilities[0], at, code, f)
			w.must(err)
		}
	}
}

// checklistPath is the report module's copy of the default test plan's messages, one per case.
const checklistPath = "../report/testdata/certification/checklist.hl7"

// adultFindings are what the pipeline answers the checklist's adult dose when its lot and
// manufacturer are left out: AE, with these warnings.
const adultFindings = `[{"rule":"rxa-15-missing","location":"RXA[1]-15.0.0","code":101,"severity":"W","text":"RXA-15 (lot number) is empty for a dose you administered."},
	{"rule":"rxa-17-missing","location":"RXA[1]-17.0.0","code":101,"severity":"W","text":"RXA-17 (manufacturer) is empty."}]`

// checklist reads the checklist's messages: control ID → raw message, and the IDs in order.
func (w *world) checklist() (map[string][]byte, []string) {
	w.t.Helper()
	data, err := os.ReadFile(checklistPath)
	w.must(err)
	msgs, order := map[string][]byte{}, []string(nil)
	for _, m := range hl7.SplitMessages(data) {
		pm, err := hl7.Parse(m)
		w.must(err)
		id := pm.Get("MSH-10")
		msgs[id] = m
		order = append(order, id)
	}
	return msgs, order
}

// archive inserts an archived message as the pipeline's writer stores it.
func (w *world) archive(site *admin.Site, env, ctl string, at time.Time, code, findings string, raw []byte) {
	w.t.Helper()
	if findings == "" {
		findings = "[]"
	}
	_, err := w.db.Pool.Exec(context.Background(), `INSERT INTO messages (env, site_id, transport, control_id, sending_facility,
		message_type, received_at, raw, ack, ack_code, findings, resend_key) VALUES ($1, $2, 'mllp', $3, $4, 'VXU^V04^VXU_V04', $5, $6,
		'ack'::bytea, $7, $8::json, true)`, env, site.ID, ctl, site.Facilities[0], at, raw, code, findings)
	w.must(err)
}

// certificationRun archives the checklist's messages as a testing site's run in the test
// environment, sent at (one a minute) and answered as the pipeline does: every case passes but
// the adult dose, sent without lot and manufacturer (AE with warnings: the case expects AA).
func (w *world) certificationRun(site *admin.Site, at time.Time) {
	w.t.Helper()
	msgs, order := w.checklist()
	for i, id := range order {
		code, findings := "AA", ""
		if id == "CERT-02-ADULT" {
			code, findings = "AE", adultFindings
		}
		w.archive(site, "T", id, at.Add(time.Duration(i)*time.Minute), code, findings, msgs[id])
	}
}

var rxaDate = regexp.MustCompile(`\rRXA\|0\|1\|\d{8}`)

// traffic archives real messages (the checklist's, cycled, the administration date moved to
// 0 to 9 days before receipt) in env over the last days: mostly AA, the adult dose AE with its
// warnings, now and then an AR with an error.
func (w *world) traffic(site *admin.Site, env string, days int) {
	w.t.Helper()
	msgs, order := w.checklist()
	now := time.Now().UTC()
	n := 0
	for d := days - 1; d >= 0; d-- {
		for i := 0; i < 2+(d*5)%7; i++ {
			n++
			id := order[n%len(order)]
			at := now.AddDate(0, 0, -d).Add(-time.Duration(i) * 17 * time.Minute)
			given := at.AddDate(0, 0, -((n * 7) % 10)).Format("20060102")
			raw := rxaDate.ReplaceAll(msgs[id], []byte("\rRXA|0|1|"+given))
			code, findings := "AA", ""
			switch {
			case id == "CERT-02-ADULT":
				code, findings = "AE", adultFindings
			case n%13 == 0:
				code, findings = "AR", `[{"rule":"rxa-5-cvx-999","location":"RXA[1]-5.0.0","code":103,"severity":"E","text":"RXA-5 is CVX 999 (unknown vaccine)."}]`
			}
			w.archive(site, env, fmt.Sprintf("%s-%05d", site.Code, n), at, code, findings, raw)
		}
	}
}
