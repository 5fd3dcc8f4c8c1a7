package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/user"
	"regexp"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/cli"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) {
	passwd.DefaultParams = passwd.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	storetest.Main(m)
}

// operatorName is who the command line says ran it (see cli.operator).
func operatorName(t *testing.T) string {
	if su := os.Getenv("SUDO_USER"); su != "" && os.Geteuid() == 0 {
		return su
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

type harness struct {
	t     *testing.T
	db    *store.DB
	opens int
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, db: storetest.New(t)}
}

func (h *harness) open(context.Context) (*admin.Service, func(), error) {
	h.opens++
	return admin.NewService(store.NewAdminStore(h.db), admin.Options{BaseURL: "https://registry.test"}), func() {}, nil
}

// run executes `admin <args>` in-process on a fresh command tree.
func (h *harness) run(stdin string, args ...string) (string, error) {
	h.t.Helper()
	cmd := cli.Command(h.open)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, err := h.run("", args...)
	if err != nil {
		h.t.Fatalf("admin %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (h *harness) fails(want string, args ...string) {
	h.t.Helper()
	_, err := h.run("", args...)
	if err == nil {
		h.t.Fatalf("admin %s succeeded, want an error containing %q", strings.Join(args, " "), want)
	}
	if strings.Contains(err.Error(), "\n") {
		h.t.Errorf("admin %s: error is not one line: %q", strings.Join(args, " "), err)
	}
	if !strings.Contains(err.Error(), want) {
		h.t.Errorf("admin %s: error %q does not contain %q", strings.Join(args, " "), err, want)
	}
}

func TestOnboardingSiteAndSenders(t *testing.T) {
	h := newHarness(t)
	h.ok("org", "create", "--code", "HS", "--name", "Health System")
	h.ok("org", "create", "--code", "KID", "--name", "Kid Clinic", "--parent", "HS")
	out := h.ok("org", "list")
	if !strings.Contains(out, "KID") || !strings.Contains(out, "HS") {
		t.Fatalf("org list:\n%s", out)
	}
	out = h.ok("site", "create", "--org", "KID", "--code", "KID01", "--name", "Kid Clinic 1", "--facility", "KID01", "--facility", "KID01-B")
	if !strings.Contains(out, "registered") || !strings.Contains(out, "KID01, KID01-B") {
		t.Fatalf("site create:\n%s", out)
	}
	h.fails("already exists", "site", "create", "--org", "KID", "--code", "KID01", "--name", "again")
	h.ok("site", "create", "--org", "KID", "--code", "KID01", "--name", "again", "--ensure", "--facility", "KID01-C")

	// SOAP credential with a generated password, printed once.
	out = h.ok("sender", "add-soap", "--site", "KID01", "--username", "kid01-ehr", "--facility", "KID01")
	m := regexp.MustCompile(`password\s+(\S+)\s+\(generated`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no generated password in:\n%s", out)
	}
	cred, err := h.db.SOAPCredential(context.Background(), "kid01-ehr")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := passwd.Verify(cred.PasswordHash, m[1]); !ok || !cred.Sender.MaySendFor("KID01-B") {
		t.Fatalf("SOAP credential %+v does not work with the printed password", cred)
	}
	// From stdin, JSON output, and --update for scripts.
	out, err = h.run("Stdin-Secret-123\n", "--json", "sender", "add-soap", "--site", "KID01", "--username", "kid01-ehr", "--facility", "KID01", "--password-stdin", "--update")
	if err != nil {
		t.Fatal(err)
	}
	var c admin.SenderCredential
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Username != "kid01-ehr" || strings.Contains(out, "Stdin-Secret") {
		t.Fatalf("json output %s: %v", out, err)
	}
	cred, _ = h.db.SOAPCredential(context.Background(), "kid01-ehr")
	if ok, _ := passwd.Verify(cred.PasswordHash, "Stdin-Secret-123"); !ok {
		t.Fatal("password from stdin not stored")
	}
	h.fails("taken", "sender", "add-soap", "--site", "KID01", "--username", "kid01-ehr", "--facility", "KID01", "--password", "Another-Secret-1")
	// A facility the site did not have yet is added to what it may send for: said, and audited.
	out = h.ok("sender", "add-soap", "--site", "KID01", "--username", "kid01-new", "--facility", "KID01-NEW")
	if !strings.Contains(out, "site KID01 may now also send for MSH-4 KID01-NEW") {
		t.Errorf("add-soap with a new facility does not say so:\n%s", out)
	}
	if out := h.ok("audit", "list", "--action", "site.add_facility"); !strings.Contains(out, "KID01-NEW") {
		t.Errorf("adding the facility through add-soap is not audited:\n%s", out)
	}

	h.ok("sender", "add-mllp", "--site", "KID01", "--cidr", "192.0.2.0/28")
	s, err := h.db.MLLPSender(context.Background(), netip.MustParseAddr("192.0.2.5"), "")
	if err != nil || s.SiteCode != "KID01" {
		t.Fatalf("MLLP sender: %+v %v", s, err)
	}
	h.fails("source address", "sender", "add-mllp", "--site", "KID01")
	out = h.ok("sender", "list", "--site", "KID01")
	if strings.Count(out, "KID01") < 2 || strings.Contains(out, "argon2id") {
		t.Fatalf("sender list:\n%s", out)
	}

	h.fails("cannot go from", "site", "set-status", "KID01", "production")
	// No site goes to testing without an active access administrator.
	h.fails("no active access administrator", "site", "set-status", "KID01", "testing")
	out = h.ok("user", "invite", "--site", "KID01", "--username", "kid.aa", "--first-name", "Kim", "--last-name", "Aa",
		"--email", "kim@kid01.test", "--role", "read_only_administrator", "--designation", "access_administrator", "--print-link")
	link := regexp.MustCompile(`register\?token=(\S+)`).FindStringSubmatch(out)
	if link == nil {
		t.Fatalf("no link:\n%s", out)
	}
	svc, _, _ := h.open(context.Background())
	if _, err := svc.Register(context.Background(), link[1], "Kim-Password-1", true); err != nil {
		t.Fatal(err)
	}
	h.ok("site", "set-status", "KID01", "testing")
	out = h.ok("site", "set-status", "KID01", "production", "--go-live", "2025-06-01")
	if !strings.Contains(out, "production") || !strings.Contains(out, "2025-06-01") {
		t.Fatalf("set-status:\n%s", out)
	}
	h.fails("cannot go from", "site", "set-status", "KID01", "registered")
	h.ok("site", "add-facility", "KID01", "KID01-D")
	h.fails("belongs to site KID01", "site", "create", "--org", "HS", "--code", "HS01", "--name", "x", "--facility", "KID01-D")

	out = h.ok("sender", "list", "--json")
	var creds []admin.SenderCredential
	if err := json.Unmarshal([]byte(out), &creds); err != nil || len(creds) != 3 {
		t.Fatalf("sender list --json: %s %v", out, err)
	}
	h.ok("sender", "revoke", "1")
	h.fails("already revoked", "sender", "revoke", "1")

	out = h.ok("audit", "list", "--site", "KID01")
	for _, a := range []string{"site.create", "credential.create", "site.set_status", "cli:" + operatorName(t)} {
		if !strings.Contains(out, a) {
			t.Errorf("audit list lacks %s:\n%s", a, out)
		}
	}
}

func TestUsersFromTheCommandLine(t *testing.T) {
	h := newHarness(t)
	h.ok("org", "create", "--code", "ORG", "--name", "Org")
	h.ok("site", "create", "--org", "ORG", "--code", "S1", "--name", "Site 1", "--status", "testing")
	// An operator may create a site directly in testing; without users it needs an AA, and says so.
	if out := h.ok("site", "list", "--needs-aa"); !strings.Contains(out, "S1") {
		t.Fatalf("site list --needs-aa:\n%s", out)
	}
	if out := h.ok("site", "show", "S1"); !strings.Contains(out, "needs access administrator") {
		t.Fatalf("site show:\n%s", out)
	}

	out, err := h.run("Bootstrap-Pass-1\n", "user", "bootstrap", "--username", "rstaff", "--first-name", "Regina", "--last-name", "Staff",
		"--email", "regina@registry.test", "--password-stdin")
	if err != nil || !strings.Contains(out, "registry administrator rstaff created") {
		t.Fatalf("bootstrap: %s %v", out, err)
	}
	h.fails("already exists", "user", "bootstrap", "--username", "other", "--first-name", "O", "--last-name", "T", "--email", "o@registry.test")

	// Invite: no SMTP configured here, so the link is printed on request.
	h.fails("--print-link", "user", "invite", "--site", "S1", "--username", "aa.one", "--first-name", "Ann", "--last-name", "One",
		"--email", "ann@s1.test", "--role", "administrator", "--designation", "access_administrator")
	out = h.ok("user", "invite", "--site", "S1", "--username", "aa.one", "--first-name", "Ann", "--last-name", "One",
		"--email", "ann@s1.test", "--role", "administrator", "--designation", "access_administrator", "--print-link")
	m := regexp.MustCompile(`https://registry\.test/api/v1/register\?token=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no link:\n%s", out)
	}
	svc, _, _ := h.open(context.Background())
	if _, err := svc.Register(context.Background(), m[1], "Ann-Password-1", true); err != nil {
		t.Fatal(err)
	}
	h.fails("admin", "user", "invite", "--site", "S1", "--username", "s1admin", "--first-name", "X", "--last-name", "Y", "--email", "x@s1.test", "--role", "read_only", "--print-link")
	h.fails("role", "user", "invite", "--site", "S1", "--username", "bob.b", "--first-name", "X", "--last-name", "Y", "--email", "x@s1.test", "--role", "boss", "--print-link")
	h.fails("already has the email", "user", "invite", "--site", "S1", "--username", "ann.two", "--first-name", "Ann", "--last-name", "Two", "--email", "ANN@s1.test", "--role", "read_only", "--print-link")

	out = h.ok("user", "search", "--first-name", "ann", "--last-name", "ONE")
	if !strings.Contains(out, "aa.one") {
		t.Fatalf("search:\n%s", out)
	}
	if out := h.ok("site", "list", "--needs-aa"); strings.Contains(out, "S1") {
		t.Fatalf("S1 has an active AA now, still listed:\n%s", out)
	}
	out = h.ok("--json", "user", "list", "--site", "S1")
	var us []admin.User
	if err := json.Unmarshal([]byte(out), &us); err != nil || len(us) != 1 || us[0].Status != admin.UserActive {
		t.Fatalf("user list: %s %v", out, err)
	}

	// The last AA rule holds at the command line too.
	h.fails("last active access administrator", "user", "deactivate", "aa.one")
	h.fails("last active access administrator", "user", "set-role", "aa.one", "--site", "S1", "--role", "typical_user", "--clear-designations")
	// Adding an existing user to another site is an invitation they accept.
	h.ok("site", "create", "--org", "ORG", "--code", "S2", "--name", "Site 2")
	h.fails("invitation", "user", "set-role", "aa.one", "--site", "S2", "--role", "read_only")
	out = h.ok("user", "invite-to-site", "aa.one", "--site", "S2", "--role", "read_only")
	if !strings.Contains(out, "accepts it after logging in") {
		t.Fatalf("invite-to-site:\n%s", out)
	}
	if u, _ := svc.UserByUsername(context.Background(), admin.SystemActor("test"), "aa.one"); len(u.Memberships) != 1 {
		t.Fatalf("invited user is a member before accepting: %+v", u.Memberships)
	}
	out = h.ok("user", "set-role", "aa.one", "--site", "S1", "--role", "administrator_ordering")
	if !strings.Contains(out, "Administrator with Ordering; Access Administrator") {
		t.Fatalf("set-role:\n%s", out)
	}

	out = h.ok("user", "reset-password", "aa.one")
	if !strings.Contains(out, "temporary password") {
		t.Fatalf("reset:\n%s", out)
	}
	h.fails("not locked", "user", "unlock", "aa.one")
	h.ok("user", "show", "aa.one")
	h.fails("not found", "user", "show", "nobody")
	out = h.ok("user", "expire-inactive")
	if !strings.Contains(out, "0 account(s) expired") {
		t.Fatalf("expire:\n%s", out)
	}
	out = h.ok("roles")
	if !strings.Contains(out, "health_system_user_ordering") || !strings.Contains(out, "Incentive Program Contact") {
		t.Fatalf("roles:\n%s", out)
	}
}

func TestSharingFromTheCommandLine(t *testing.T) {
	h := newHarness(t)
	var id int64
	if err := h.db.Pool.QueryRow(context.Background(), `INSERT INTO registry_patients (env, family_name, birth_date, sharing)
		VALUES ('P', 'Doe', '2010-01-01', 'U') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	h.fails("Y (share) or N", "sharing", "set", "1", "--status", "X")
	h.fails("the signed form's reference or an attestation", "sharing", "set", "1", "--status", "N")
	out := h.ok("sharing", "set", "1", "--status", "n", "--form", "OBJ-9")
	if !strings.Contains(out, "U → N") {
		t.Fatalf("sharing set:\n%s", out)
	}
	h.fails("already has", "sharing", "set", "1", "--status", "N", "--form", "OBJ-9")
	out = h.ok("sharing", "set", "1", "--status", "Y", "--attestation", "patient withdrew by phone")
	if !strings.Contains(out, "N → Y") || !strings.Contains(out, "attestation patient withdrew by phone") {
		t.Fatalf("withdrawal with an attestation:\n%s", out)
	}
	h.fails("not a number", "sharing", "set", "one", "--status", "N")
	out = h.ok("audit", "list", "--action", "patient.")
	if !strings.Contains(out, "patient.set_sharing") {
		t.Fatalf("audit:\n%s", out)
	}
}

func TestBadUse(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"org", "create", "--name", "x"}, `required flag(s) "code" not set`},
		{[]string{"org", "create", "--code", "A", "--name", "x", "--colour", "red"}, "unknown flag"},
		{[]string{"site", "set-status", "ONLY-ONE-ARG"}, "accepts 2 arg(s)"},
		{[]string{"site", "show", "NOPE"}, "not found"},
		{[]string{"site", "create", "--org", "NOPE", "--code", "S", "--name", "x", "--go-live", "01/02/2025"}, "YYYY-MM-DD"},
		{[]string{"user", "bootstrap", "--username", "x1", "--first-name", "a", "--last-name", "b", "--email", "e@x.test", "--password", "p", "--password-stdin"}, "either"},
		{[]string{"user", "bootstrap", "--username", "jdoe", "--first-name", "a", "--last-name", "b", "--email", "e@x.test", "--password", "weakweak"}, "password must"},
		{[]string{"audit", "list", "--since", "yesterday"}, "YYYY-MM-DD"},
		{[]string{"nonsense"}, "unknown command"},
	}
	for _, tc := range tests {
		h.fails(tc.want, tc.args...)
	}
	// Argument errors are found before the database is opened.
	h.opens = 0
	h.fails("accepts 1 arg", "user", "show")
	if h.opens != 0 {
		t.Errorf("the service was opened for a usage error")
	}
	// --help works everywhere and needs no database.
	for _, args := range [][]string{{"--help"}, {"user", "invite", "--help"}, {"sender", "add-soap", "--help"}} {
		out, err := h.run("", args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}
