package admin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name, pw, user string
		ok             bool
		complaint      string
	}{
		{"good", "Spring-Day-2024", "", true, ""},
		{"good unicode special", "Grüße§Zürich42", "", true, ""},
		{"exactly 12", "Abcdefgh1!xy", "", true, ""},
		{"exactly 30", "Abcdefgh1!" + strings.Repeat("x", 20), "", true, ""},
		{"too short", "Abcdefg1!", "", false, "12 to 30"},
		{"too long", "Abcdefgh1!" + strings.Repeat("x", 21), "", false, "12 to 30"},
		{"no upper", "spring-day-2024", "", false, "uppercase"},
		{"no lower", "SPRING-DAY-2024", "", false, "lowercase"},
		{"no digit", "Spring-Day-Today", "", false, "digit"},
		{"no special", "SpringDay20245", "", false, "special"},
		{"space is not special", "Spring Day 2024", "", false, "special"},
		{"control", "Spring-Day-2024\x00", "", false, "control"},
		{"contains username", "Xjsmith-2024!a", "jsmith", false, "username"},
		{"contains username other case", "XJSMITH-2024!a", "jsmith", false, "username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.pw, tc.user)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckPassword(%q) = %v, want nil", tc.pw, err)
				}
				return
			}
			if !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("CheckPassword(%q) = %v, want weak_password", tc.pw, err)
			}
			if !strings.Contains(err.Error(), tc.complaint) {
				t.Errorf("error %q does not mention %q", err, tc.complaint)
			}
		})
	}
}

func TestGeneratePasswordMeetsPolicy(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPassword(pw, ""); err != nil {
			t.Fatalf("generated %q: %v", pw, err)
		}
		if seen[pw] {
			t.Fatalf("generated %q twice", pw)
		}
		seen[pw] = true
	}
}

func TestCheckUsername(t *testing.T) {
	tests := []struct {
		u  string
		ok bool
	}{
		{"jsmith", true},
		{"jane.doe", true},
		{"j.doe@clinic.example", true},
		{"nurse.ratched", true},
		{"ab", false},                    // too short
		{strings.Repeat("a", 65), false}, // too long
		{"1jsmith", false},               // must start with a letter
		{"j smith", false},
		{"jsmith!", false},
		{"müller", false}, // ASCII only
		{"admin", false},
		{"siteadmin", false},
		{"JaneADMIN", false},
		{"administrator", false},
		{"nurse", false},
		{"nurse2", false},
		{"front.desk", false},
		{"FrontDesk1", false},
		{"test", false},
		{"user_01", false},
		{"guest", false},
		{"reception", false},
		// The seeds' own examples and compounds of generic words, whatever the case and separators.
		{"clinicstaff", false},
		{"Clinic.Staff", false},
		{"clinic_staff2", false},
		{"testuser", false},
		{"nursestation", false},
		{"Front-Desk-3", false},
		{"SharedAccount", false},
		{"ad.min", false},
		{"Ad-Min2", false},
		{"j_ad_min", false},
		// Personal names beside generic words are fine.
		{"doc.martin", true},
		{"jane.nurse", true},
		{"lab.okafor", true},
		{"alabama", true},
	}
	for _, tc := range tests {
		err := CheckUsername(tc.u)
		if tc.ok && err != nil {
			t.Errorf("CheckUsername(%q) = %v, want ok", tc.u, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("CheckUsername(%q) = %v, want invalid_username", tc.u, err)
		}
	}
}

func TestFoldUsername(t *testing.T) {
	for _, u := range []string{"jsmith", "J.Smith", "j_smith", "J-SMITH", "j.s-m_ith"} {
		if got := foldUsername(u); got != "jsmith" {
			t.Errorf("foldUsername(%q) = %q", u, got)
		}
	}
	if usernameKey("J.Smith ") != foldUsername("jsmith") {
		t.Error("the login throttle and the store fold usernames differently")
	}
}

func TestRolePermissions(t *testing.T) {
	type row struct{ read, sharing, view, manage bool }
	want := map[Role]row{
		RoleReadOnly:                 {true, false, false, false},
		RoleTypicalUser:              {true, true, false, false},
		RoleTypicalUserOrdering:      {true, true, false, false},
		RoleReadOnlyAdministrator:    {true, false, true, true}, // manages users, reads patients only
		RoleAdministrator:            {true, true, true, true},
		RoleAdministratorOrdering:    {true, true, true, true},
		RoleHealthSystemUser:         {true, true, true, true},
		RoleHealthSystemUserOrdering: {true, true, true, true},
	}
	if len(want) != len(Roles) {
		t.Fatalf("table has %d roles, Roles %d", len(want), len(Roles))
	}
	for _, r := range Roles {
		w := want[r]
		got := row{r.Can(PermReadPatients), r.Can(PermChangeSharing), r.Can(PermViewUsers), r.Can(PermManageUsers)}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", r, got, w)
		}
		if r.Label() == "" {
			t.Errorf("%s has no label", r)
		}
	}
	if Role("superuser").Can(PermReadPatients) {
		t.Error("an unknown role may read")
	}
}

func TestActorScope(t *testing.T) {
	// Health system 1 has sites 10 (org 1) and 11 (org 2, child of 1); site 20 is elsewhere.
	aa := Actor{UserID: 1, Memberships: []Membership{{SiteID: 10, OrganizationID: 1, HealthSystemID: 1, Role: RoleAdministrator}}}
	hsu := Actor{UserID: 2, Memberships: []Membership{{SiteID: 10, OrganizationID: 1, HealthSystemID: 1, Role: RoleHealthSystemUser}}}
	ro := Actor{UserID: 3, Memberships: []Membership{{SiteID: 10, OrganizationID: 1, HealthSystemID: 1, Role: RoleReadOnly}}}
	aaTU := Actor{UserID: 4, Memberships: []Membership{{SiteID: 10, OrganizationID: 1, HealthSystemID: 1, Role: RoleTypicalUser,
		Designations: []Designation{DesignationAccessAdministrator}}}}
	aaRO := Actor{UserID: 5, Memberships: []Membership{{SiteID: 10, OrganizationID: 1, HealthSystemID: 1, Role: RoleReadOnly,
		Designations: []Designation{DesignationAccessAdministrator}}}}
	tests := []struct {
		name   string
		a      Actor
		p      Permission
		site   int64
		family int64
		want   bool
	}{
		{"AA own site", aa, PermManageUsers, 10, 1, true},
		{"AA sibling site", aa, PermManageUsers, 11, 1, false},
		{"AA other system", aa, PermManageUsers, 20, 2, false},
		{"HSU own site", hsu, PermManageUsers, 10, 1, true},
		{"HSU child site", hsu, PermManageUsers, 11, 1, true},
		{"HSU other system", hsu, PermManageUsers, 20, 2, false},
		{"read-only reads", ro, PermReadPatients, 10, 1, true},
		{"read-only no sharing", ro, PermChangeSharing, 10, 1, false},
		{"read-only no users", ro, PermViewUsers, 10, 1, false},
		{"AA designation manages", aaTU, PermManageUsers, 10, 1, true},
		{"AA designation not elsewhere", aaTU, PermManageUsers, 11, 1, false},
		{"AA designation gives no sharing", aaRO, PermChangeSharing, 10, 1, false},
		{"system", SystemActor("test"), PermManageUsers, 20, 2, true},
		{"registry admin", Actor{RegistryAdmin: true}, PermManageUsers, 20, 2, true},
	}
	for _, tc := range tests {
		if _, got := tc.a.atSite(tc.p, &Site{ID: tc.site, HealthSystemID: tc.family}); got != tc.want {
			t.Errorf("%s: can = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSiteStatusTransitions(t *testing.T) {
	tests := []struct {
		from, to SiteStatus
		ok       bool
	}{
		{SiteRegistered, SiteTesting, true},
		{SiteTesting, SiteProduction, true},
		{SiteRegistered, SiteProduction, false},
		{SiteProduction, SiteTesting, true},
		{SiteProduction, SiteRegistered, false},
		{SiteTesting, SiteRegistered, true},
		{SiteTesting, SiteTesting, false},
	}
	for _, tc := range tests {
		if got := tc.from.CanMoveTo(tc.to); got != tc.ok {
			t.Errorf("%s → %s: %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}

func TestDesignations(t *testing.T) {
	// The AA designation goes with any role: it grants user management, the role patient access.
	if _, err := checkDesignations(RoleTypicalUser, []Designation{DesignationAccessAdministrator}); err != nil {
		t.Errorf("AA with Typical User: %v", err)
	}
	if _, err := checkDesignations("chief", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown role: %v", err)
	}
	ds, err := checkDesignations(RoleAdministrator, []Designation{DesignationTechnicalContact, DesignationAccessAdministrator, DesignationTechnicalContact})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0] != DesignationAccessAdministrator {
		t.Errorf("designations = %v, want sorted and deduplicated", ds)
	}
	if _, err := checkDesignations(RoleAdministrator, []Designation{"chief"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown designation: %v", err)
	}
}

func TestDateJSON(t *testing.T) {
	var v struct {
		D Date `json:"d"`
		E Date `json:"e"`
	}
	if err := json.Unmarshal([]byte(`{"d":"2024-02-29","e":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.D.String() != "2024-02-29" || !v.E.IsZero() {
		t.Fatalf("got %v %v", v.D, v.E)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"d":"2024-02-29","e":null}` {
		t.Errorf("marshal = %s", b)
	}
	for _, bad := range []string{`{"d":"2024-02-30"}`, `{"d":"20240101"}`, `{"d":5}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestNormalizeCIDR(t *testing.T) {
	tests := map[string]string{
		"10.1.2.3":         "10.1.2.3/32",
		"10.1.2.3/24":      "10.1.2.0/24",
		"2001:db8::1":      "2001:db8::1/128",
		"::ffff:10.0.0.1":  "10.0.0.1/32",
		"":                 "",
		" 192.168.0.0/16 ": "192.168.0.0/16",
	}
	for in, want := range tests {
		got, err := normalizeCIDR(in)
		if err != nil || got != want {
			t.Errorf("normalizeCIDR(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalizeCIDR("10.0.0.0/33"); err == nil {
		t.Error("10.0.0.0/33 accepted")
	}
}

func TestVisibilityRestrict(t *testing.T) {
	p := &Patient{ID: 1, Sharing: SharingNo, FamilyName: "Registry",
		Reports: []PatientReport{
			{OrganizationID: 1, HealthSystemID: 1, FamilyName: "Own"},
			{OrganizationID: 5, HealthSystemID: 5, FamilyName: "Other"},
		},
		Vaccinations: []Vaccination{{ID: 1, OrganizationID: 1}, {ID: 2, OrganizationID: 5, HealthSystemID: 5}},
	}
	own := Actor{UserID: 1, Memberships: []Membership{{OrganizationID: 1, HealthSystemID: 1, Role: RoleTypicalUser}}}
	if !own.reporters(PermReadPatients, p) {
		t.Fatal("own report not seen")
	}
	v := visibilityOf(own)
	v.restrict(p)
	if len(p.Reports) != 1 || p.FamilyName != "Own" || len(p.Vaccinations) != 1 || p.Vaccinations[0].ID != 1 {
		t.Errorf("restricted patient = %+v", p)
	}
	other := Actor{UserID: 2, Memberships: []Membership{{OrganizationID: 9, HealthSystemID: 9, Role: RoleAdministrator}}}
	if other.reporters(PermReadPatients, &Patient{Reports: []PatientReport{{OrganizationID: 1, HealthSystemID: 1}}}) {
		t.Error("another organization sees the report")
	}
}
