package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMain gives the tests a real PostgreSQL (storetest) and cheap argon2id parameters: the
// tests register and log in many users on a shared 2-core machine. The production parameters are
// tested in package passwd.
func TestMain(m *testing.M) {
	passwd.DefaultParams = passwd.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	storetest.Main(m)
}

// --- a small real SMTP server, enough for net/smtp: EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA ---

type mailMsg struct {
	From, To string
	Data     string
	TLS      bool
	Auth     string
}

type smtpServer struct {
	ln       net.Listener
	tls      *tls.Config // offer STARTTLS when set
	auth     bool        // offer AUTH PLAIN
	rejectTo string      // RCPT TO this address gets 550

	mu   sync.Mutex
	msgs []mailMsg
	wg   sync.WaitGroup
}

func startSMTP(t testing.TB, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	if configure != nil {
		configure(s)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) messages() []mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailMsg(nil), s.msgs...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	var cur mailMsg
	reply("220 test.invalid ESMTP ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			ext := []string{"test.invalid", "8BITMIME"}
			if s.tls != nil && !cur.TLS {
				ext = append(ext, "STARTTLS")
			}
			if s.auth {
				ext = append(ext, "AUTH PLAIN")
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				w.WriteString("250" + sep + e + "\r\n")
			}
			w.Flush()
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
			cur = mailMsg{TLS: true}
		case "AUTH":
			parts := strings.Fields(line)
			if len(parts) == 3 {
				b, _ := base64.StdEncoding.DecodeString(parts[2])
				cur.Auth = string(b)
			}
			reply("235 ok")
		case "MAIL":
			from := strings.TrimPrefix(line[5:], "FROM:")
			if i := strings.IndexByte(from, '>'); i >= 0 {
				from = from[:i]
			}
			cur.From = strings.Trim(from, "<> ")
			reply("250 ok")
		case "RCPT":
			to := strings.Trim(strings.TrimPrefix(line[5:], "TO:"), "<> ")
			if s.rejectTo != "" && to == s.rejectTo {
				reply("550 no such user")
				continue
			}
			cur.To = to
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
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
			cur.Data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			cur = mailMsg{TLS: cur.TLS}
			reply("250 queued")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// selfSigned returns a server TLS config for 127.0.0.1 and a client pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// --- test environment: real PostgreSQL, real HTTP, real SMTP ---

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	db    *store.DB
	svc   *admin.Service
	srv   *httptest.Server
	smtp  *smtpServer
	clock *clock
	logs  *observer.ObservedLogs
	sys   admin.Actor

	// The seeded world: health system HS (parent) with child organization CHILD, and an
	// unrelated organization OTHER; one site each.
	orgHS, orgChild, orgOther    *admin.Organization
	siteHS, siteChild, siteOther *admin.Site
}

type envOption func(*admin.Options, *smtpServer)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, db: storetest.New(t), clock: &clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}, sys: admin.SystemActor("test")}
	e.smtp = startSMTP(t, nil)
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	var h http.Handler = http.NotFoundHandler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	o := admin.Options{
		Now:     e.clock.Now,
		Logger:  zap.New(core),
		SMTP:    admin.SMTPConfig{Addr: e.smtp.addr(), From: "registry@vaxgate.test", Timeout: 10 * time.Second},
		BaseURL: e.srv.URL,
	}
	for _, opt := range opts {
		opt(&o, e.smtp)
	}
	e.svc = admin.NewService(store.NewAdminStore(e.db), o)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin.NewHandler(e.svc, zap.New(core)))
	// The report module's site routes, as serve mounts them: decided by the same decision point.
	reports := report.NewService(store.NewReportStore(e.db), report.Options{Now: e.clock.Now})
	report.NewHandler(reports, e.svc, zap.New(core)).Register(mux)
	h = mux
	e.seed()
	return e
}

func (e *env) seed() {
	t, ctx := e.t, context.Background()
	t.Helper()
	var err error
	if e.orgHS, err = e.svc.CreateOrganization(ctx, e.sys, admin.OrganizationInput{Code: "HS", Name: "Health System"}); err != nil {
		t.Fatal(err)
	}
	if e.orgChild, err = e.svc.CreateOrganization(ctx, e.sys, admin.OrganizationInput{Code: "CHILD", Name: "Child Clinic", ParentCode: "HS"}); err != nil {
		t.Fatal(err)
	}
	if e.orgOther, err = e.svc.CreateOrganization(ctx, e.sys, admin.OrganizationInput{Code: "OTHER", Name: "Other Practice"}); err != nil {
		t.Fatal(err)
	}
	mk := func(org, code string) *admin.Site {
		s, err := e.svc.CreateSite(ctx, e.sys, admin.SiteInput{OrganizationCode: org, Code: code, Name: code + " site", Status: admin.SiteTesting, Facilities: []string{code + "-FAC"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.siteHS, e.siteChild, e.siteOther = mk("HS", "S-HS"), mk("CHILD", "S-CHILD"), mk("OTHER", "S-OTHER")
}

const goodPassword = "Tulip-Garden-42"

// user creates an active user through the real flow (invite + register) with the system actor.
func (e *env) user(username string, site *admin.Site, role admin.Role, ds ...admin.Designation) *admin.User {
	e.t.Helper()
	ctx := context.Background()
	in := admin.InviteInput{
		NewUserInput: admin.NewUserInput{Username: username, FirstName: "F" + username, LastName: "L" + username, Email: username + "@clinic.test"},
		Role:         role, Designations: ds, SkipEmail: true,
	}
	if site != nil {
		in.SiteID = site.ID
	} else {
		in.RegistryAdmin = true
	}
	inv, err := e.svc.Invite(ctx, e.sys, in)
	if err != nil {
		e.t.Fatalf("invite %s: %v", username, err)
	}
	u, err := e.svc.Register(ctx, tokenOf(e.t, inv.Link), goodPassword, true)
	if err != nil {
		e.t.Fatalf("register %s: %v", username, err)
	}
	return u
}

var tokenRE = regexp.MustCompile(`/api/v1/register\?token=([A-Za-z0-9_%-]+)`)

func tokenOf(t testing.TB, text string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no registration link in %q", text)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// login logs in through the API and returns the token.
func (e *env) login(username string) string {
	e.t.Helper()
	return e.loginWith(username, goodPassword)
}

func (e *env) loginWith(username, pw string) string {
	e.t.Helper()
	var res admin.LoginResult
	e.must(http.StatusOK, "POST", "/api/v1/login", "", map[string]string{"username": username, "password": pw}, &res)
	if res.Token == "" {
		e.t.Fatal("login returned no token")
	}
	return res.Token
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request; body is JSON-encoded unless it is a string or []byte (sent as is).
func (e *env) do(method, path, token string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// must sends a request, requires the status and decodes the answer into out (when not nil).
func (e *env) must(status int, method, path, token string, body, out any) {
	e.t.Helper()
	got, b, _ := e.do(method, path, token, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// fail sends a request and requires an error answer with this status and code.
func (e *env) fail(status int, code, method, path, token string, body any) string {
	e.t.Helper()
	got, b, _ := e.do(method, path, token, body)
	var ae apiError
	if err := json.Unmarshal(b, &ae); err != nil {
		e.t.Fatalf("%s %s: status %d, body %q is not a JSON error", method, path, got, b)
	}
	if got != status || ae.Error.Code != code {
		e.t.Fatalf("%s %s: %d %q, want %d %q: %s", method, path, got, ae.Error.Code, status, code, ae.Error.Message)
	}
	if ae.Error.Message == "" {
		e.t.Fatalf("%s %s: error without message", method, path)
	}
	return ae.Error.Message
}

func (e *env) userByName(username string) *admin.User {
	e.t.Helper()
	u, err := e.svc.UserByUsername(context.Background(), e.sys, username)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// audit returns the audit entries with this action, newest first.
func (e *env) audit(action string) []admin.AuditEntry {
	e.t.Helper()
	es, err := e.svc.ListAudit(context.Background(), e.sys, admin.AuditFilter{Action: action, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// patient inserts a registry patient reported by the given sites (one report and one
// vaccination per site), the way the pipeline stores them.
func (e *env) patient(family, given, birth string, sharing admin.Sharing, sites ...*admin.Site) int64 {
	e.t.Helper()
	return e.patientIn("P", family, given, birth, sharing, sites...)
}

// patientIn is patient in environment env ("P" or "T").
func (e *env) patientIn(env, family, given, birth string, sharing admin.Sharing, sites ...*admin.Site) int64 {
	e.t.Helper()
	ctx := context.Background()
	var reg int64
	err := e.db.Pool.QueryRow(ctx, `INSERT INTO registry_patients (env, family_name, given_name, birth_date, sex, sharing)
		VALUES ($5, $1, $2, $3, 'F', $4) RETURNING id`, family, given, birth, string(sharing), env).Scan(&reg)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, s := range sites {
		var msg, pat int64
		if err := e.db.Pool.QueryRow(ctx, `INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code)
			VALUES ($3, $1, 'mllp', $2, now(), '\x00', '\x00', 'AA') RETURNING id`, s.ID, fmt.Sprintf("ctl-%d-%d", reg, i), env).Scan(&msg); err != nil {
			e.t.Fatal(err)
		}
		if err := e.db.Pool.QueryRow(ctx, `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type, registry_patient_id,
			family_name, given_name, birth_date, sex, demographics) VALUES ($7, $1, $2, 'AUTH', 'MR', $3, $4, $5, $6::date, 'F',
			jsonb_build_object('names', jsonb_build_array(jsonb_build_object('family', $4::text, 'given', $5::text, 'type', 'L')),
				'birth_date', to_char($6::date, 'YYYYMMDD'), 'sex', 'F')) RETURNING id`,
			s.OrganizationID, fmt.Sprintf("MRN-%d-%d", reg, i), reg, family, given, birth, env).Scan(&pat); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.db.Pool.Exec(ctx, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, cvx,
			administered_on, historical, lot, mvx, details, first_message_id, last_message_id)
			VALUES ($7, $1, $2, $3, $4, '08', '2024-05-01', false, $5, 'MSD', '{}', $6, $6)`,
			pat, reg, s.OrganizationID, s.ID, "LOT-"+s.Code, msg, env); err != nil {
			e.t.Fatal(err)
		}
	}
	return reg
}

func (e *env) sharingOf(id int64) string {
	e.t.Helper()
	var s string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT sharing FROM registry_patients WHERE id = $1`, id).Scan(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}
