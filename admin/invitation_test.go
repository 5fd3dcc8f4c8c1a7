package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInvitationTemplate(t *testing.T) {
	custom := "Subject: Welcome to {{.RegistryName}}\nDear {{.FirstName}}, site {{.SiteName}} (PIN {{.SiteCode}}) invites you: {{.Link}}\nHelp: {{.HelpDesk}}\n"
	tpl, err := ParseInvitationTemplate(custom)
	if err != nil {
		t.Fatal(err)
	}
	d := InvitationData{FirstName: "Ana", SiteCode: "S-7", SiteName: "North Clinic", RegistryName: "MIIS",
		HelpDesk: "617-555-0100", Link: "https://r.example/register?token=abc", ExpiresAt: time.Now()}
	subject, body, err := renderInvitation(tpl, d)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Welcome to MIIS" || !strings.Contains(body, "site North Clinic (PIN S-7) invites you: https://r.example/register?token=abc") ||
		!strings.Contains(body, "Help: 617-555-0100") {
		t.Errorf("subject %q body %q", subject, body)
	}
	// The default names the registry, the site and its PIN, the help desk and the link.
	subject, body, err = renderInvitation(defaultInvitation, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in MIIS for site North Clinic (PIN S-7)", "Questions: 617-555-0100.", d.Link} {
		if !strings.Contains(body, want) {
			t.Errorf("default invitation lacks %q:\n%s", want, body)
		}
	}
	if subject != "Your account in MIIS" {
		t.Errorf("default subject %q", subject)
	}

	for src, want := range map[string]string{
		"Subject: x\n{{.Link}} {{.Nickname}}\n": "Nickname",
		"Hello {{.FirstName}}\n{{.Link}}\n":     "first line must be",
		"Subject: x\nno link here\n":            "registration link",
		"Subject: x\n{{.Link}\n":                "invitation template",
	} {
		if _, err := ParseInvitationTemplate(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("template %q: %v, want an error about %q", src, err, want)
		}
	}
}

func TestMailDrop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	c := SMTPConfig{Dir: dir, From: "registry@example.org"}
	if !c.Configured() {
		t.Fatal("a mail drop folder with a sender address is a configured mail service")
	}
	now := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	if err := sendMail(t.Context(), c, mailMessage{To: "ana@clinic.example", Subject: "Hi", Body: "link: x\n"}, now); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("mail drop holds %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("dropped mail mode %v, want 0600 (it holds registration links)", fi.Mode().Perm())
	}
	for _, want := range []string{"To: ana@clinic.example", "From: registry@example.org", "Subject: Hi", "link: x"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dropped mail lacks %q:\n%s", want, b)
		}
	}
	if (SMTPConfig{From: "x@y"}).Configured() {
		t.Error("no server and no drop folder is not configured")
	}
}
