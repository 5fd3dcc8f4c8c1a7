package admin_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vaxgate/vaxgate/admin"
)

// TestOpenAPIMatchesRoutes checks that every route the handler registers is in the OpenAPI
// document and every operation of the document is a route, and that each route answers on the
// real handler (not the "no such route" fallback).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
			if op["responses"] == nil || op["operationId"] == nil {
				t.Errorf("%s %s: no responses or operationId", method, path)
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range admin.Routes() {
		registered[r.Method+" "+r.Path] = true
	}
	for k := range registered {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.yaml", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("openapi.yaml documents %s, which is not a route", k)
		}
	}

	e := newEnv(t)
	code, body, hdr := e.do("GET", "/api/v1/openapi.yaml", "", nil)
	if code != 200 || !bytes.Equal(body, admin.OpenAPI) || hdr.Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET openapi.yaml: %d %s", code, hdr.Get("Content-Type"))
	}
	fill := strings.NewReplacer("{id}", "1", "{site_id}", "1", "{facility}", "F")
	for _, r := range admin.Routes() {
		code, body, _ := e.do(r.Method, fill.Replace(r.Path), "", nil)
		if code == http.StatusMethodNotAllowed || bytes.Contains(body, []byte(`"no_route"`)) {
			t.Errorf("%s %s is not served: %d %s", r.Method, r.Path, code, body)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	tok := e.login("reg.rita")
	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		ctype        string
		status       int
		code         string
	}{
		{"unknown field", "POST", "/api/v1/organizations", tok, `{"code":"A1","name":"A","owner":"me"}`, "", 400, "invalid"},
		{"bad JSON", "POST", "/api/v1/organizations", tok, `{"code":`, "", 400, "invalid"},
		{"two objects", "POST", "/api/v1/organizations", tok, `{"code":"A1","name":"A"}{}`, "", 400, "invalid"},
		{"wrong type", "POST", "/api/v1/organizations", tok, `{"code":5,"name":"A"}`, "", 400, "invalid"},
		{"empty body", "POST", "/api/v1/organizations", tok, "", "", 400, "invalid"},
		{"too large", "POST", "/api/v1/organizations", tok, `{"code":"A1","name":"` + strings.Repeat("x", 70<<10) + `"}`, "", 413, "too_large"},
		{"not JSON", "POST", "/api/v1/organizations", tok, `code=A1`, "text/plain", 400, "unsupported_media_type"},
		{"bad id", "GET", "/api/v1/users/abc", tok, nil, "", 400, "invalid"},
		{"negative id", "GET", "/api/v1/users/-4", tok, nil, "", 400, "invalid"},
		{"missing", "GET", "/api/v1/users/424242", tok, nil, "", 404, "not_found"},
		{"bad date", "POST", "/api/v1/sites/1/status", tok, `{"status":"testing","go_live_date":"2025-02-30"}`, "", 400, "invalid"},
		{"bad query", "GET", "/api/v1/audit?limit=lots", tok, nil, "", 400, "invalid"},
		{"no such route", "GET", "/api/v1/nothing", tok, nil, "", 404, "no_route"},
		{"wrong method", "DELETE", "/api/v1/organizations", tok, nil, "", 405, "method_not_allowed"},
		{"no session", "GET", "/api/v1/organizations", "", nil, "", 401, "unauthenticated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			if tc.ctype == "" {
				e.fail(tc.status, tc.code, tc.method, tc.path, tc.token, tc.body)
				return
			}
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body.(string)))
			req.Header.Set("Content-Type", tc.ctype)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	e.t = t
	_, _, hdr := e.do("DELETE", "/api/v1/organizations", tok, nil)
	if allow := hdr.Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow = %q", allow)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Basic "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic auth: %d", resp.StatusCode)
	}
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	u := e.user("worker", e.siteHS, admin.RoleTypicalUser)
	w := e.user("worker.o", e.siteOther, admin.RoleTypicalUser)
	reg, aaHS, aaOther := e.login("reg.rita"), e.login("aa.hs"), e.login("aa.other")
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID), aaHS, nil, nil)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", w.ID), aaOther, nil, nil)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/sites/%d/status", e.siteHS.ID), reg, map[string]string{"status": "production"}, nil)

	var all, mine, filtered struct{ Items []admin.AuditEntry }
	e.must(http.StatusOK, "GET", "/api/v1/audit?limit=1000", reg, nil, &all)
	e.must(http.StatusOK, "GET", "/api/v1/audit?limit=1000", aaHS, nil, &mine)
	if len(mine.Items) == 0 || len(mine.Items) >= len(all.Items) {
		t.Fatalf("aa.hs sees %d of %d entries", len(mine.Items), len(all.Items))
	}
	for _, x := range mine.Items {
		if !slices.Contains(x.SiteIDs, e.siteHS.ID) {
			t.Errorf("aa.hs sees an entry of other sites: %+v", x)
		}
	}
	for i := 1; i < len(all.Items); i++ {
		if all.Items[i].ID >= all.Items[i-1].ID {
			t.Fatal("not newest first")
		}
	}
	// Who, what, when, before/after.
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/audit?action=user.deactivate&target_type=user&target_id=%d", u.ID), aaHS, nil, &filtered)
	if len(filtered.Items) != 1 {
		t.Fatalf("filtered = %+v", filtered.Items)
	}
	x := filtered.Items[0]
	if x.Actor != "aa.hs" || x.ActorUserID == nil || x.At.IsZero() || !containsAll(string(x.Before), `"active"`) || !containsAll(string(x.After), `"inactive_manual"`) {
		t.Errorf("entry = %+v %s %s", x, x.Before, x.After)
	}
	// Prefix filter and paging.
	e.must(http.StatusOK, "GET", "/api/v1/audit?action=site.", reg, nil, &filtered)
	for _, x := range filtered.Items {
		if !strings.HasPrefix(x.Action, "site.") {
			t.Errorf("action %s", x.Action)
		}
	}
	var page1, page2 struct{ Items []admin.AuditEntry }
	e.must(http.StatusOK, "GET", "/api/v1/audit?limit=2", reg, nil, &page1)
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/audit?limit=2&before_id=%d", page1.Items[1].ID), reg, nil, &page2)
	if len(page1.Items) != 2 || len(page2.Items) != 2 || page2.Items[0].ID >= page1.Items[1].ID {
		t.Errorf("paging: %v %v", page1.Items, page2.Items)
	}
	// Passwords never reach the audit log.
	for _, x := range all.Items {
		if containsAll(string(x.Before)+string(x.After), goodPassword) || containsAll(string(x.Before)+string(x.After), "argon2id") {
			t.Errorf("secret in audit entry %+v", x)
		}
	}
}

// TestNoSecretsOrPatientDataInLogs runs flows with passwords, tokens and patient names and checks
// what the logger received.
func TestNoSecretsOrPatientDataInLogs(t *testing.T) {
	e := newEnv(t)
	e.user("tu.hs", e.siteHS, admin.RoleTypicalUser)
	tok := e.login("tu.hs")
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "tu.hs", "password": "Secret-Guess-1"})
	p := e.patient("Zebediah", "Quux", "2001-01-01", admin.SharingYes, e.siteHS)
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", p), tok, nil, nil)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/patients/%d/sharing", p), tok, map[string]string{"status": "N", "form_ref": "F-1"}, nil)
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=Zebediah&birth_date=2001-01-01", tok, nil, nil)
	if e.logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, entry := range e.logs.All() {
		text := entry.Message + fmt.Sprint(entry.ContextMap())
		for _, secret := range []string{goodPassword, "Secret-Guess-1", tok, "Zebediah", "Quux", "2001-01-01"} {
			if strings.Contains(text, secret) {
				t.Errorf("log entry %q holds %q", text, secret)
			}
		}
	}
}
