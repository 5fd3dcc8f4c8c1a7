package soap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestMain gives the tests a real PostgreSQL (storetest). Fuzz workers run only the fuzz target
// and need none, so they do not start one each.
func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			os.Exit(m.Run())
		}
	}
	storetest.Main(m)
}

// The real pipeline is a Submitter, and a starter: a payload's messages share group commits.
var (
	_ Submitter = (*ingest.Pipeline)(nil)
	_ starter   = (*ingest.Pipeline)(nil)
)

// The fixture's senders. The passwords are test secrets that must never appear in a log.
const (
	userA = "clinic-a-ehr"
	passA = "Clinic-A-Secret-1!"
	userB = "clinic-b-ehr"
	passB = "Clinic-B-Secret-2!"
	userR = "clinic-a-retired" // revoked
	passR = "Retired-Secret-3!"

	wrongPass = "Wr0ng-Guess-77"

	patientFamily = "TESTPATIENT"
	patientGiven  = "JOSEPHINE"
)

// vxu is a synthetic VXU^V04 from facility with control ID control; LF line ends, as many senders
// write them in SOAP payloads.
func vxu(control, facility string) string {
	return strings.Join([]string{
		`MSH|^~\&|ClinicEHR|` + facility + `|vaxgate|STATEIIS|20240310101500-0500||VXU^V04^VXU_V04|` + control + `|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS`,
		`PID|1||MRN-` + control + `^^^CLINIC-A^MR||` + patientFamily + `^` + patientGiven + `^Q^^^^L||20190402|F`,
		`ORC|RE||ORD-` + control + `^CLINIC-A`,
		`RXA|0|1|20240310|20240310|08^Hep B, adolescent or pediatric^CVX|0.5|mL^mL^UCUM||00^New Immunization Record^NIP001||||||LOT123A|20251231|MSD^Merck and Co., Inc.^MVX|||CP|A`,
		`RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163`,
		`OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - Medicaid/Medicaid Managed Care^HL70064||||||F|||20240310|||VXC40^Eligibility captured at the immunization level^CDCPHINVS`,
	}, "\n") + "\n"
}

// engine is the real thing behind real HTTP: pipeline, group-commit writer and PostgreSQL.
type engine struct {
	db      *store.DB
	writer  *store.Writer
	handler *Handler
	srv     *httptest.Server
	url     string // the service: srv.URL + "/soap"
	logs    *observer.ObservedLogs
	reg     *prometheus.Registry
	siteA   int64
}

// counter reads a counter of the handler's registry; 0 when it was never incremented.
func (e *engine) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func newEngine(t *testing.T, opts ...func(*Options)) *engine {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	e := &engine{db: db}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("fixture %q: %v", sql, err)
		}
	}
	exec(`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG-A', 'Clinic A'), (2, 'ORG-B', 'Clinic B')`)
	exec(`INSERT INTO sites (id, organization_id, code, name, status) VALUES (1, 1, 'SITE-A', 'Clinic A Main', 'production'), (2, 2, 'SITE-B', 'Clinic B', 'production')`)
	exec(`INSERT INTO site_facilities (facility_id, site_id) VALUES ('FAC-A', 1), ('X68', 1), ('FAC-B', 2)`)
	e.siteA = 1
	hash := func(pw string) string {
		h, err := passwd.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	exec(`INSERT INTO sender_credentials (site_id, transport, username, password_hash, facility_id, revoked_at) VALUES
		(1, 'soap', $1, $2, 'FAC-A', NULL), (2, 'soap', $3, $4, 'FAC-B', NULL), (1, 'soap', $5, $6, 'FAC-A', now() - interval '1 day')`,
		userA, hash(passA), userB, hash(passB), userR, hash(passR))

	writer, err := db.NewWriter(store.WriterOptions{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.writer = writer
	p, err := ingest.NewPipeline(ingest.Options{Committer: writer, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	e.reg = prometheus.NewRegistry()
	o := Options{
		Submitter: p, Senders: db, MaxMessageSize: 64 << 10,
		Logger: zap.New(core), Registerer: e.reg,
	}
	for _, f := range opts {
		f(&o)
	}
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	mux := http.NewServeMux()
	mux.Handle("/soap", h)
	e.srv = httptest.NewServer(mux)
	e.url = e.srv.URL + "/soap"
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = writer.Close(ctx)
	})
	return e
}

// post sends body to the service and returns the answer.
func (e *engine) post(t *testing.T, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func (e *engine) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	ct12 = `application/soap+xml; charset=utf-8; action="urn:cdc:iisb:2011:submitSingleMessage"`
	ct11 = `text/xml; charset=utf-8`
)

func escape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// submission builds a submitSingleMessage request.
type submission struct {
	v                      version
	user, pass, facility   string
	payload                string // inserted as is: escape it or wrap it in CDATA
	header                 string // SOAP header content
	omitUser, omitPassword bool
}

func (s submission) String() string {
	env := env12
	if s.v == soap11 {
		env = env11
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + env)
	if s.header != "" {
		b.WriteString(`<soap:Header>` + s.header + `</soap:Header>`)
	}
	b.WriteString(`<soap:Body><iis:submitSingleMessage>`)
	if !s.omitUser {
		b.WriteString(`<iis:username>` + escape(s.user) + `</iis:username>`)
	}
	if !s.omitPassword {
		b.WriteString(`<iis:password>` + escape(s.pass) + `</iis:password>`)
	}
	b.WriteString(`<iis:facilityID>` + escape(s.facility) + `</iis:facilityID>`)
	b.WriteString(`<iis:hl7Message>` + s.payload + `</iis:hl7Message>`)
	b.WriteString(`</iis:submitSingleMessage></soap:Body></soap:Envelope>`)
	return b.String()
}

func usernameTokenHeader(user, pass, typ string) string {
	return `<wsse:Security soap:mustUnderstand="true" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">` +
		`<wsse:UsernameToken wsu:Id="UsernameToken-1" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">` +
		`<wsse:Username>` + escape(user) + `</wsse:Username>` +
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#` + typ + `">` + escape(pass) + `</wsse:Password>` +
		`</wsse:UsernameToken></wsse:Security>`
}

// acks splits the return of submitSingleMessage into parsed ACKs.
func acks(t *testing.T, ret string) []*hl7.Message {
	t.Helper()
	var out []*hl7.Message
	for _, raw := range hl7.SplitMessages([]byte(ret)) {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatalf("ACK does not parse: %v\n%q", err, raw)
		}
		out = append(out, m)
	}
	return out
}

func TestWSDLOverHTTP(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name     string
		method   string
		query    string
		url      string // the service URL seen by the WSDL; "" = the test server's
		public   string
		status   int
		ctPrefix string
	}{
		{name: "wsdl", method: http.MethodGet, query: "?wsdl", status: 200, ctPrefix: "text/xml"},
		{name: "WSDL upper case", method: http.MethodGet, query: "?WSDL", status: 200, ctPrefix: "text/xml"},
		{name: "head", method: http.MethodHead, query: "?wsdl", status: 200, ctPrefix: "text/xml"},
		{name: "soap 1.1 wsdl", method: http.MethodGet, query: "?wsdl=1.1", status: 200, ctPrefix: "text/xml"},
		{name: "no query: a pointer to the WSDL", method: http.MethodGet, status: 200, ctPrefix: "text/plain"},
		{name: "other method", method: http.MethodPut, status: 405, ctPrefix: "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.url+tt.query, nil)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctPrefix) {
				t.Fatalf("%s %s = %d %s; want %d %s", tt.method, tt.query, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctPrefix)
			}
			if tt.query == "" || tt.method != http.MethodGet {
				return
			}
			if tt.query == "?wsdl=1.1" {
				if !bytes.Equal(body, WSDL11(e.url)) {
					t.Errorf("?wsdl=1.1 is not the SOAP 1.1 description")
				}
				return
			}
			var d wsdlDefinitions
			if err := xml.Unmarshal(body, &d); err != nil {
				t.Fatalf("WSDL does not parse: %v", err)
			}
			if loc := d.Services[0].Ports[0].Address.Location; loc != e.url {
				t.Errorf("service address = %q; want %q", loc, e.url)
			}
			got, err := describe(body, "")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := describe(WSDL("x"), "")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("served WSDL differs from the embedded one")
			}
		})
	}

	// Behind a proxy, the configured public address is advertised.
	for _, public := range []string{"https://iis.example.org", "https://iis.example.org/", "https://iis.example.org/soap"} {
		p := newEngine(t, func(o *Options) { o.PublicURL = public })
		resp, err := p.srv.Client().Get(p.url + "?wsdl")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte(`location="https://iis.example.org/soap"`)) {
			t.Errorf("PublicURL %q: WSDL address is not https://iis.example.org/soap", public)
		}
	}
}

func TestConnectivityTestOverHTTP(t *testing.T) {
	e := newEngine(t)
	echo := `Hello <IIS> & "friends" – ü`
	tests := []struct {
		name   string
		ct     string
		env    string
		wantCT string
		wantNS string
	}{
		{"soap 1.2", `application/soap+xml; charset=utf-8; action="urn:cdc:iisb:2011:connectivityTest"`, env12, "application/soap+xml; charset=utf-8", nsSOAP12},
		{"soap 1.2 without content type", "", env12, "application/soap+xml; charset=utf-8", nsSOAP12},
		{"soap 1.1", ct11, env11, "text/xml; charset=utf-8", nsSOAP11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.env + `<soap:Body><iis:connectivityTest><iis:echoBack>` + escape(echo) +
				`</iis:echoBack></iis:connectivityTest></soap:Body></soap:Envelope>`
			resp, out := e.post(t, tt.ct, strings.NewReader(body))
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.wantCT {
				t.Fatalf("status %d, Content-Type %q; want 200 %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantCT, out)
			}
			r, err := decodeResponse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if r.Fault || r.EnvelopeNS != tt.wantNS || r.Element != (xml.Name{Space: Namespace, Local: "connectivityTestResponse"}) || r.Return != echo {
				t.Errorf("response = %+v; want connectivityTestResponse returning %q", r, echo)
			}
		})
	}
}

func TestSubmitSingleMessageOverHTTP(t *testing.T) {
	e := newEngine(t)
	// A deployment that accepts several messages per request (soap.multi_message).
	multi := newEngine(t, func(o *Options) { o.MultiMessage = true })
	batch := "BHS|^~\\&|ClinicEHR|FAC-A|||20240310\n" + vxu("B-1", "FAC-A") + vxu("B-2", "FAC-A") + vxu("B-3", "FAC-A") + "BTS|3\n"
	wrapped := "FHS|^~\\&|ClinicEHR|FAC-A\nBHS|^~\\&|ClinicEHR|FAC-A|||20240310\n" + vxu("W-1", "FAC-A") + "BTS|1\nFTS|1\n"
	tests := []struct {
		name     string
		multi    bool // sent to the multi-message deployment
		ct       string
		req      submission
		controls []string // MSA-2 of each ACK, in order
		codes    []string // MSA-1
		stored   []string // control IDs whose records are stored
	}{
		{name: "body credentials, escaped payload",
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("S-1", "FAC-A"))},
			controls: []string{"S-1"}, codes: []string{"AA"}, stored: []string{"S-1"}},
		{name: "CDATA payload with CRLF line ends",
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: "<![CDATA[" + strings.ReplaceAll(vxu("S-2", "FAC-A"), "\n", "\r\n") + "]]>"},
			controls: []string{"S-2"}, codes: []string{"AA"}, stored: []string{"S-2"}},
		{name: "WS-Security UsernameToken, no credentials in the body (MIIS)",
			req: submission{omitUser: true, omitPassword: true, facility: "FAC-A", header: usernameTokenHeader(userA, passA, "PasswordText"),
				payload: "<![CDATA[" + vxu("S-3", "FAC-A") + "]]>\n\n"},
			controls: []string{"S-3"}, codes: []string{"AA"}, stored: []string{"S-3"}},
		{name: "empty body fields fall back to the token",
			req:      submission{facility: "FAC-A", header: usernameTokenHeader(userA, passA, "PasswordText"), payload: escape(vxu("S-4", "FAC-A"))},
			controls: []string{"S-4"}, codes: []string{"AA"}, stored: []string{"S-4"}},
		{name: "one message wrapped in FHS/BHS/BTS/FTS (MIIS)",
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: "<![CDATA[" + wrapped + "]]>"},
			controls: []string{"W-1"}, codes: []string{"AA"}, stored: []string{"W-1"}},
		{name: "multi-message deployment: two messages, two ACKs in order", multi: true,
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("S-5", "FAC-A") + vxu("S-6", "X68"))},
			controls: []string{"S-5", "S-6"}, codes: []string{"AA", "AA"}, stored: []string{"S-5", "S-6"}},
		{name: "multi-message deployment: BHS/BTS batch", multi: true,
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: "<![CDATA[" + batch + "]]>"},
			controls: []string{"B-1", "B-2", "B-3"}, codes: []string{"AA", "AA", "AA"}, stored: []string{"B-1", "B-2", "B-3"}},
		{name: "soap 1.1", ct: ct11,
			req:      submission{v: soap11, user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("S-7", "FAC-A"))},
			controls: []string{"S-7"}, codes: []string{"AA"}, stored: []string{"S-7"}},
		{name: "no facilityID: MSH-4 decides",
			req:      submission{user: userA, pass: passA, payload: escape(vxu("S-8", "FAC-A"))},
			controls: []string{"S-8"}, codes: []string{"AA"}, stored: []string{"S-8"}},
		{name: "MSH-4 of another site is rejected, the rest of the payload is not", multi: true,
			req:      submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("S-9", "FAC-B") + vxu("S-10", "FAC-A"))},
			controls: []string{"S-9", "S-10"}, codes: []string{"AR", "AA"}, stored: []string{"S-10"}},
		{name: "no HL7 in the payload: AR",
			req:   submission{user: userA, pass: passA, facility: "FAC-A", payload: "hello"},
			codes: []string{"AR"}, controls: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e
			if tt.multi {
				e = multi
			}
			ct := tt.ct
			if ct == "" {
				ct = ct12
			}
			resp, out := e.post(t, ct, strings.NewReader(tt.req.String()))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d\n%s", resp.StatusCode, out)
			}
			r, err := decodeResponse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if r.Fault || r.Element != (xml.Name{Space: Namespace, Local: "submitSingleMessageResponse"}) {
				t.Fatalf("response = %+v", r)
			}
			got := acks(t, r.Return)
			if len(got) != len(tt.codes) {
				t.Fatalf("%d ACKs; want %d\n%q", len(got), len(tt.codes), r.Return)
			}
			for i, a := range got {
				if a.Get("MSA-1") != tt.codes[i] || a.Get("MSA-2") != tt.controls[i] || a.Get("MSH-9-1") != "ACK" {
					t.Errorf("ACK %d: MSA %s|%s, MSH-9 %s; want %s|%s", i+1, a.Get("MSA-1"), a.Get("MSA-2"), a.Get("MSH-9-1"),
						tt.codes[i], tt.controls[i])
				}
			}
			// ACK after commit: what an AA acknowledges is in the database when the answer arrives.
			for _, c := range tt.stored {
				if n := e.count(t, `SELECT count(*) FROM messages WHERE control_id = $1 AND transport = 'soap' AND site_id = $2 AND ack_code = 'AA'`, c, e.siteA); n != 1 {
					t.Errorf("message %s archived %d times with AA; want 1", c, n)
				}
				if n := e.count(t, `SELECT count(*) FROM vaccinations WHERE filler_order_id = $1`, "ORD-"+c+"^CLINIC-A"); n != 1 {
					t.Errorf("message %s: %d vaccinations stored; want 1", c, n)
				}
			}
		})
	}
	if n := multi.count(t, `SELECT count(*) FROM vaccinations WHERE filler_order_id = 'ORD-S-9^CLINIC-A'`); n != 0 {
		t.Errorf("a message for another site's facility was stored")
	}
}

// A resend (same sender, same MSH-10) gets the original ACK and changes nothing.
func TestResendOverHTTP(t *testing.T) {
	e := newEngine(t)
	req := submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("R-1", "FAC-A"))}.String()
	var first string
	for i := range 2 {
		resp, out := e.post(t, ct12, strings.NewReader(req))
		r, err := decodeResponse(out)
		if err != nil || resp.StatusCode != 200 || r.Fault {
			t.Fatalf("attempt %d: %d %v\n%s", i+1, resp.StatusCode, err, out)
		}
		if i == 0 {
			first = r.Return
		} else if r.Return != first {
			t.Errorf("resend ACK differs:\n%q\n%q", r.Return, first)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM vaccinations`); n != 1 {
		t.Errorf("%d vaccinations after a resend; want 1", n)
	}
	// The message and its resend's copy each have their report facts, as the summaries make them.
	if n := storetest.CheckFacts(t, e.db); n != 2 {
		t.Errorf("report facts of %d messages; want 2", n)
	}
}

type faultWant struct {
	status   int
	ct       string // Content-Type prefix
	soapCode string
	element  string // detail element in Namespace; "" = no CDC detail
	code     string
}

func checkFault(t *testing.T, resp *http.Response, out []byte, w faultWant) *response {
	t.Helper()
	if resp.StatusCode != w.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), w.ct) {
		t.Fatalf("status %d, Content-Type %q; want %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), w.status, w.ct, out)
	}
	r, err := decodeResponse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !r.Fault || r.SOAPCode != w.soapCode || r.ReasonText == "" {
		t.Fatalf("fault = %+v; want SOAP code %s", r, w.soapCode)
	}
	if w.element == "" {
		if r.DetailCount != 0 {
			t.Errorf("unexpected detail %v", r.DetailEl)
		}
		return r
	}
	if r.DetailEl != (xml.Name{Space: Namespace, Local: w.element}) || r.Code != w.code || r.Detail == "" {
		t.Errorf("detail = %v Code %q Reason %q Detail %q; want {%s}%s Code %s", r.DetailEl, r.Code, r.Reason, r.Detail, Namespace, w.element, w.code)
	}
	// The WSDL's fixed Reason of each fault (what a client generated from the CDC's WSDL accepts).
	if want := fixedReason[w.element]; r.Reason != want {
		t.Errorf("%s Reason = %q; want %q", w.element, r.Reason, want)
	}
	return r
}

var fixedReason = map[string]string{
	"SecurityFault": "Security", "MessageTooLargeFault": "MessageTooLarge",
	"UnsupportedOperationFault": "UnsupportedOperation", "fault": "Unknown",
}

func TestFaultsOverHTTP(t *testing.T) {
	e := newEngine(t)
	msg := escape(vxu("F-1", "FAC-A"))
	security12 := faultWant{400, "application/soap+xml", "Sender", "SecurityFault", "60"}
	tooLarge := faultWant{400, "application/soap+xml", "Sender", "MessageTooLargeFault", "30"}
	malformed12 := faultWant{400, "application/soap+xml", "Sender", "fault", "2"}
	big := strings.Repeat("OBX|1|ST|x||"+strings.Repeat("y", 100)+"\n", 700) // > 64 KiB

	tests := []struct {
		name   string
		ct     string
		body   func() io.Reader
		want   faultWant
		detail string // substring of the CDC detail
	}{
		{name: "wrong password", want: security12,
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: wrongPass, facility: "FAC-A", payload: msg}.String())
			}},
		{name: "unknown username", want: security12,
			body: func() io.Reader {
				return strings.NewReader(submission{user: "nobody", pass: passA, facility: "FAC-A", payload: msg}.String())
			}},
		{name: "no credentials", want: security12,
			body: func() io.Reader {
				return strings.NewReader(submission{omitUser: true, omitPassword: true, facility: "FAC-A", payload: msg}.String())
			}},
		{name: "revoked credential", want: security12,
			body: func() io.Reader {
				return strings.NewReader(submission{user: userR, pass: passR, facility: "FAC-A", payload: msg}.String())
			}},
		{name: "wrong password in the token", want: security12,
			body: func() io.Reader {
				return strings.NewReader(submission{omitUser: true, omitPassword: true, facility: "FAC-A",
					header: usernameTokenHeader(userA, wrongPass, "PasswordText"), payload: msg}.String())
			}},
		{name: "password digest", want: security12, detail: "PasswordText",
			body: func() io.Reader {
				return strings.NewReader(submission{omitUser: true, omitPassword: true, facility: "FAC-A",
					header: usernameTokenHeader(userA, "bm90IGEgZGlnZXN0", "PasswordDigest"), payload: msg}.String())
			}},
		{name: "facilityID of another site", want: security12, detail: `"FAC-B"`,
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-B", payload: msg}.String())
			}},
		{name: "soap 1.1 security fault", ct: ct11, want: faultWant{500, "text/xml", "Client", "SecurityFault", "60"},
			body: func() io.Reader {
				return strings.NewReader(submission{v: soap11, user: userA, pass: wrongPass, payload: msg}.String())
			}},
		{name: "payload over the limit, streamed", want: tooLarge, detail: "65536",
			body: func() io.Reader {
				// io.MultiReader hides the length: the request is sent chunked.
				return io.MultiReader(strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(big)}.String()))
			}},
		{name: "body over the limit, streamed", want: tooLarge, detail: "larger than",
			body: func() io.Reader {
				// Comments are not payload: only the limit on the whole body stops this one.
				return io.MultiReader(strings.NewReader(env12+`<soap:Body><iis:connectivityTest><iis:echoBack>`),
					strings.NewReader(strings.Repeat("<!-- padding -->", 10000)))
			}},
		{name: "announced length over the limit", want: tooLarge, detail: "requests of at most",
			body: func() io.Reader { return bytes.NewReader(make([]byte, 200<<10)) }},
		{name: "two messages in one request (NIST SOAPCON_4)", want: tooLarge, detail: "holds 2 HL7 messages",
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("F-3", "FAC-A") + vxu("F-4", "FAC-A"))}.String())
			}},
		{name: "a BHS/BTS batch of two messages", want: tooLarge, detail: "holds 2 HL7 messages",
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A",
					payload: escape("BHS|^~\\&|EHR|FAC-A\n" + vxu("F-5", "FAC-A") + vxu("F-6", "FAC-A") + "BTS|2\n")}.String())
			}},
		{name: "empty hl7Message", want: malformed12, detail: "empty or missing",
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: ""}.String())
			}},
		{name: "blank hl7Message", want: malformed12, detail: "empty or missing",
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: " \n&#xD;\t "}.String())
			}},
		{name: "no hl7Message element", want: malformed12, detail: "empty or missing",
			body: func() io.Reader {
				return strings.NewReader(body12(`<iis:submitSingleMessage><iis:username>` + userA + `</iis:username><iis:password>` +
					escape(passA) + `</iis:password><iis:facilityID>FAC-A</iis:facilityID></iis:submitSingleMessage>`))
			}},
		{name: "a batch envelope without a message", want: malformed12, detail: "without any message",
			body: func() io.Reader {
				return strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape("BHS|^~\\&|EHR|FAC-A\nBTS|0\n")}.String())
			}},
		{name: "connectivityTest without echoBack", want: malformed12, detail: "no <echoBack>",
			body: func() io.Reader {
				return strings.NewReader(body12(`<iis:connectivityTest></iis:connectivityTest>`))
			}},
		{name: "unknown operation", want: faultWant{400, "application/soap+xml", "Sender", "UnsupportedOperationFault", "50"}, detail: "submitBatch",
			body: func() io.Reader {
				return strings.NewReader(body12(`<iis:submitBatch><iis:batch>x</iis:batch></iis:submitBatch>`))
			}},
		{name: "malformed XML", want: malformed12, detail: "well-formed",
			body: func() io.Reader {
				return strings.NewReader(body12(`<iis:connectivityTest><iis:echoBack>x</iis:connectivityTest>`))
			}},
		{name: "not SOAP", want: malformed12, detail: "not a SOAP Envelope",
			body: func() io.Reader { return strings.NewReader(`<html><body/></html>`) }},
		{name: "not XML at all", want: malformed12,
			body: func() io.Reader { return strings.NewReader(strings.TrimSpace(vxu("F-2", "FAC-A"))) }},
		{name: "content type not XML", ct: "application/json", want: faultWant{415, "application/soap+xml", "Sender", "fault", "2"},
			body: func() io.Reader { return strings.NewReader(`{"hl7Message": "MSH|..."}`) }},
		{name: "SOAP version mismatch", want: faultWant{500, "application/soap+xml", "VersionMismatch", "", ""},
			body: func() io.Reader {
				return strings.NewReader(`<e:Envelope xmlns:e="urn:not-soap"><e:Body/></e:Envelope>`)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = ct12
			}
			resp, out := e.post(t, ct, tt.body())
			r := checkFault(t, resp, out, tt.want)
			if !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", r.Detail, tt.detail)
			}
		})
	}
	if n := e.count(t, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("%d messages archived from faulted requests; want 0", n)
	}

	// No hint whether a username exists: a wrong password and an unknown username get the same
	// answer, byte for byte.
	answer := func(user, pass string) []byte {
		_, out := e.post(t, ct12, strings.NewReader(submission{user: user, pass: pass, facility: "FAC-A", payload: msg}.String()))
		return out
	}
	if a, b, c := answer(userA, wrongPass), answer("nobody", wrongPass), answer(userR, passR); !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Errorf("authentication failures differ:\nwrong password: %s\nunknown user:   %s\nrevoked:        %s", a, b, c)
	}

	// Failures are counted by reason; the sender never sees the reason.
	for reason, want := range map[string]float64{
		authWrongPassword: 4, authUnknownUser: 4, authMissing: 1, authPasswordDigest: 1, authFacility: 1, authThrottled: 0,
	} {
		if got := e.counter(t, "vaxgate_soap_auth_failures_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("vaxgate_soap_auth_failures_total{reason=%q} = %v; want %v", reason, got, want)
		}
	}
	for _, c := range []struct {
		op, outcome string
		want        float64
	}{
		{"submitSingleMessage", "security", 11}, {"submitSingleMessage", "too_large", 3}, {"connectivityTest", "too_large", 1},
		{"unknown", "too_large", 1}, {"unsupported", "unsupported", 1}, {"connectivityTest", "malformed", 2}, {"unknown", "malformed", 4},
		{"submitSingleMessage", "malformed", 4},
	} {
		if got := e.counter(t, "vaxgate_soap_requests_total", map[string]string{"operation": c.op, "outcome": c.outcome}); got != c.want {
			t.Errorf("vaxgate_soap_requests_total{operation=%q,outcome=%q} = %v; want %v", c.op, c.outcome, got, c.want)
		}
	}

	// Failed authentications are logged with the username and the reason, never the password.
	var authLogs int
	for _, entry := range e.logs.All() {
		line := entry.Message + " " + fmt.Sprint(entry.ContextMap())
		for _, secret := range []string{passA, passR, wrongPass, "bm90IGEgZGlnZXN0", patientFamily, patientGiven} {
			if strings.Contains(line, secret) {
				t.Errorf("log entry contains %q: %s", secret, line)
			}
		}
		if entry.Message == "soap authentication failed" {
			authLogs++
			if m := entry.ContextMap(); m["username"] == nil || m["reason"] == nil || m["remote"] == nil {
				t.Errorf("auth failure log lacks username, reason or remote: %v", m)
			}
		}
	}
	if authLogs != 11 {
		t.Errorf("%d authentication failures logged; want 11", authLogs)
	}
}

// An announced oversize body is refused before it is read: the answer comes while the client is
// still holding back almost all of it.
func TestOversizeBodyIsNotRead(t *testing.T) {
	e := newEngine(t)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /soap HTTP/1.1\r\nHost: test\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
		ct12, int64(1)<<40, env12) // 1 TiB announced, a few bytes sent
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkFault(t, resp, out, faultWant{400, "application/soap+xml", "Sender", "MessageTooLargeFault", "30"})
}

// Internal failures are UnknownFaults (soap:Receiver, HTTP 500), with nothing about the cause.
func TestUnknownFaultOverHTTP(t *testing.T) {
	want := faultWant{500, "application/soap+xml", "Receiver", "fault", "3"}

	t.Run("the store cannot commit", func(t *testing.T) {
		e := newEngine(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.writer.Close(ctx); err != nil {
			t.Fatal(err)
		}
		resp, out := e.post(t, ct12, strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("U-1", "FAC-A"))}.String()))
		checkFault(t, resp, out, want)
		if got := e.counter(t, "vaxgate_soap_requests_total", map[string]string{"operation": "submitSingleMessage", "outcome": "internal_error"}); got != 1 {
			t.Errorf("internal errors counted %v; want 1", got)
		}
	})
	t.Run("the credentials cannot be read", func(t *testing.T) {
		e := newEngine(t)
		e.db.Close()
		resp, out := e.post(t, ct12, strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("U-2", "FAC-A"))}.String()))
		// The database cannot be asked: a fault that tells the sender to retry, and when.
		r := checkFault(t, resp, out, faultWant{500, "application/soap+xml", "Receiver", "fault", "4"})
		if ra := resp.Header.Get("Retry-After"); ra != "30" || !strings.Contains(r.Detail, "again in 30 seconds") {
			t.Errorf("Retry-After %q, detail %q; want 30 seconds", ra, r.Detail)
		}
		if strings.Contains(strings.ToLower(r.Detail), "pool") || strings.Contains(r.Detail, "closed") {
			t.Errorf("detail leaks the cause: %q", r.Detail)
		}
		var logged bool
		for _, entry := range e.logs.FilterMessage("soap request failed").All() {
			logged = logged || entry.ContextMap()["error"] != nil
		}
		if !logged {
			t.Errorf("the internal failure was not logged with its error")
		}
	})
}

// A busy sender does not pay argon2id for every request: the verification is cached, and the
// cache does not outlive a revocation.
func TestCredentialCacheOverHTTP(t *testing.T) {
	e := newEngine(t)
	var verifications atomic.Int32
	verify := e.handler.auth.verify
	e.handler.auth.verify = func(hash, pw string) (bool, error) {
		verifications.Add(1)
		return verify(hash, pw)
	}
	for i := range 3 {
		req := submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu(fmt.Sprintf("C-%d", i), "FAC-A"))}
		resp, out := e.post(t, ct12, strings.NewReader(req.String()))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d\n%s", resp.StatusCode, out)
		}
	}
	if n := verifications.Load(); n != 1 {
		t.Errorf("%d argon2id verifications for 3 requests; want 1", n)
	}
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE sender_credentials SET revoked_at = now() WHERE username = $1`, userA); err != nil {
		t.Fatal(err)
	}
	resp, out := e.post(t, ct12, strings.NewReader(submission{user: userA, pass: passA, facility: "FAC-A", payload: escape(vxu("C-9", "FAC-A"))}.String()))
	checkFault(t, resp, out, faultWant{400, "application/soap+xml", "Sender", "SecurityFault", "60"})
}

// recordingSubmitter is a Submit-only pipeline (no Start): it records the envelopes and answers
// with a minimal ACK, or fails for one control ID.
type recordingSubmitter struct {
	mu     sync.Mutex
	envs   []ingest.Envelope
	failOn string
}

func (s *recordingSubmitter) Submit(_ context.Context, env ingest.Envelope) ([]byte, error) {
	s.mu.Lock()
	s.envs = append(s.envs, env)
	s.mu.Unlock()
	id := ack.RecoverHeader(env.Payload).ControlID
	if id == s.failOn {
		return nil, errors.New("disk on fire")
	}
	return []byte("MSH|^~\\&|IIS|STATE|||20250101||ACK^V04^ACK|A-" + id + "|P|2.5.1\rMSA|AA|" + id + "\r"), nil
}

// The handler hands the pipeline each message of a payload in order, in an envelope that says who
// sent it, when and how; a failing message makes the request an UnknownFault that hides the cause.
func TestSubmitterEnvelopes(t *testing.T) {
	received := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	sub := &recordingSubmitter{failOn: "M-9"}
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"u": {Username: "u", PasswordHash: cheapHash(t, "p"), FacilityID: "F",
			Sender: ingest.Sender{CredentialID: 7, SiteCode: "S", Facilities: []string{"F"}}},
	}}
	h, err := NewHandler(Options{Submitter: sub, Senders: senders, Clock: func() time.Time { return received }, MultiMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(payload string) (*http.Response, []byte) {
		resp, err := srv.Client().Post(srv.URL, ct12, strings.NewReader(submission{user: "u", pass: "p", facility: "F", payload: escape(payload)}.String()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}

	resp, out := post(vxu("M-1", "F") + vxu("M-2", "F"))
	r, err := decodeResponse(out)
	if err != nil || resp.StatusCode != 200 || r.Fault {
		t.Fatalf("%d %v\n%s", resp.StatusCode, err, out)
	}
	if got := acks(t, r.Return); len(got) != 2 || got[0].Get("MSA-2") != "M-1" || got[1].Get("MSA-2") != "M-2" {
		t.Errorf("ACKs = %q", r.Return)
	}
	sub.mu.Lock()
	envs := sub.envs
	sub.mu.Unlock()
	if len(envs) != 2 {
		t.Fatalf("%d envelopes; want 2", len(envs))
	}
	for i, env := range envs {
		if env.Transport != ingest.TransportSOAP || env.Sender == nil || env.Sender.CredentialID != 7 ||
			!env.ReceivedAt.Equal(received) || env.Remote == "" || bytes.Contains(env.Payload, []byte("\n")) ||
			!bytes.HasPrefix(env.Payload, []byte("MSH|")) {
			t.Errorf("envelope %d = %+v", i, env)
		}
	}

	resp, out = post(vxu("M-3", "F") + vxu("M-9", "F"))
	checkFault(t, resp, out, faultWant{500, "application/soap+xml", "Receiver", "fault", "3"})
	if bytes.Contains(out, []byte("fire")) {
		t.Errorf("the fault leaks the internal error: %s", out)
	}
}
