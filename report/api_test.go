package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

// apiFixture serves the admin API and the report routes as serve mounts them.
type apiFixture struct {
	*fixture
	srv      *httptest.Server
	adminTok string // registry administrator
	certTok  string // a read-only user of CERT
	otherTok string // a read-only user of OTHER
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	ctx := context.Background()
	f := &apiFixture{fixture: newFixture(t)}
	svc := admin.NewService(store.NewAdminStore(f.db), admin.Options{})
	sys := admin.SystemActor("test")
	const pw = "Correct-Horse-9!"
	if _, err := svc.BootstrapRegistryAdmin(ctx, sys, admin.NewUserInput{Username: "rhodes", FirstName: "Rita", LastName: "Rhodes", Email: "rita@example.org"}, pw); err != nil {
		t.Fatal(err)
	}
	user := func(username, first string, site int64) {
		inv, err := svc.Invite(ctx, sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: username, FirstName: first, LastName: "Tester", Email: username + "@example.org"},
			SiteID: site, Role: admin.RoleReadOnly, SkipEmail: true})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(inv.Link)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Register(ctx, u.Query().Get("token"), pw, true); err != nil {
			t.Fatal(err)
		}
	}
	user("cnurse", "Cora", f.site.ID)
	user("onurse", "Otto", f.other.ID)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin.NewHandler(svc, nil))
	report.NewHandler(f.svc, svc, nil).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	login := func(username string) string {
		res, err := svc.Login(ctx, username, pw)
		if err != nil {
			t.Fatal(err)
		}
		return res.Token
	}
	f.adminTok, f.certTok, f.otherTok = login("rhodes"), login("cnurse"), login("onurse")
	return f
}

func (f *apiFixture) do(t *testing.T, method, path, token, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPI(t *testing.T) {
	f := newAPIFixture(t)
	at := time.Date(2025, 3, 20, 9, 0, 0, 0, time.UTC)
	f.archive(t, f.site.ID, "T", "CERT-02-ADULT", at, "AE", true, adultFindings, f.msgs["CERT-02-ADULT"])
	cert := fmt.Sprintf("/api/v1/sites/%d/certification", f.site.ID)

	// Authentication and site access are the admin module's.
	for _, tc := range []struct {
		name, method, path, token, ctype, body string
		status                                 int
		want                                   string
	}{
		{"no token", "GET", cert, "", "", "", 401, "authentication required"},
		{"bad token", "GET", cert, "not-a-token", "", "", 401, "unauthenticated"},
		{"another site's user", "GET", cert, f.otherTok, "", "", 403, "forbidden"},
		{"bad id", "GET", "/api/v1/sites/x/certification", f.certTok, "", "", 400, "positive integer"},
		{"no such site", "GET", "/api/v1/sites/999999/certification", f.adminTok, "", "", 404, "not_found"},
		{"site user reads", "GET", cert, f.certTok, "", "", 200, `"control_id":"CERT-02-ADULT"`},
		{"registry admin reads", "GET", cert, f.adminTok, "", "", 200, `"status":"failed"`},
		{"CSV", "GET", cert + "?format=csv", f.certTok, "", "", 200, "case,adult-administered,failed"},
		{"site user may not sign off", "POST", cert + "/sign-off", f.certTok, "application/json", `{"item":"contacts-on-file"}`, 403, `"rule":"registry-staff-only"`},
		{"unknown item", "POST", cert + "/sign-off", f.adminTok, "application/json", `{"item":"nope"}`, 400, "not in the test plan"},
		{"unknown field", "POST", cert + "/sign-off", f.adminTok, "application/json", `{"item":"contacts-on-file","who":"x"}`, 400, "unknown field"},
		{"sign off", "POST", cert + "/sign-off", f.adminTok, "application/json", `{"item":"contacts-on-file","note":"on file"}`, 201, `"by":"rhodes"`},
		{"quality without period", "GET", fmt.Sprintf("/api/v1/sites/%d/quality", f.site.ID), f.certTok, "", "", 400, "from is required"},
		{"quality bad env", "GET", fmt.Sprintf("/api/v1/sites/%d/quality?from=2025-03-01&to=2025-03-31&env=Q", f.site.ID), f.certTok, "", "", 400, "not P (production) or T"},
		{"quality backwards", "GET", fmt.Sprintf("/api/v1/sites/%d/quality?from=2025-03-31&to=2025-03-01", f.site.ID), f.certTok, "", "", 400, "to (2025-03-01) is before from (2025-03-31)"},
		{"quality", "GET", fmt.Sprintf("/api/v1/sites/%d/quality?from=2025-03-01&to=2025-03-31", f.site.ID), f.certTok, "", "", 200, `"env":"T"`},
		{"quality CSV", "GET", fmt.Sprintf("/api/v1/sites/%d/quality?from=2025-03-01&to=2025-03-31&format=csv", f.site.ID), f.certTok, "", "", 200, "section,item,count,total,rate"},
		{"reconcile file", "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-03-01&to=2025-03-31&env=T", f.site.ID), f.certTok, "text/plain", "CERT-02-ADULT\nMISSING-1\njunk line\n", 200, `"missing_ids":["MISSING-1"]`},
		{"reconcile count", "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-03-01&to=2025-03-31&env=T", f.site.ID), f.certTok, "application/json", `{"count":1}`, 200, `"claim":"count"`},
		{"reconcile both", "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-03-01&to=2025-03-31", f.site.ID), f.certTok, "application/json", `{"count":1,"control_ids":["A"]}`, 400, "not both"},
		{"reconcile empty", "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-03-01&to=2025-03-31", f.site.ID), f.certTok, "application/json", ``, 400, "body is required"},
		{"reconcile media type", "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-03-01&to=2025-03-31", f.site.ID), f.certTok, "application/xml", `<x/>`, 400, "unsupported_media_type"},
		{"reconcile by GET", "GET", fmt.Sprintf("/api/v1/sites/%d/reconcile", f.site.ID), f.certTok, "", "", 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, tc.token, tc.ctype, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s\nwant %d containing %q", tc.method, tc.path, status, body, tc.status, tc.want)
			}
			if status >= 400 {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
					t.Errorf("error body %q is not the API's error format", body)
				}
			}
		})
	}

	// The sign-off shows in the certification, with who and when.
	_, body := f.do(t, "GET", cert, f.certTok, "", "")
	var c report.Certification
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	signed := false
	for _, r := range c.Readiness {
		if r.ID == "contacts-on-file" {
			signed = r.Signed && r.SignedBy == "rhodes" && r.SignedAt != nil && r.Note == "on file"
		}
	}
	if !signed {
		t.Errorf("readiness %+v", c.Readiness)
	}
}
