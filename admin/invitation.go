package admin

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// InvitationData is what the invitation e-mail's template can use.
type InvitationData struct {
	FirstName, LastName, Username string
	SiteCode                      string // the site's code, its PIN in the registry
	SiteName, OrganizationCode    string // empty for an invitation to no site (registry staff)
	RegistryName, HelpDesk        string // Options.RegistryName, Options.HelpDesk
	Link                          string // the one-time registration link
	ExpiresAt                     time.Time
}

// DefaultInvitationTemplate is the invitation e-mail (text/template over InvitationData) used
// when the registry configures none. The first line is the subject.
const DefaultInvitationTemplate = `Subject: Your account in {{.RegistryName}}
Hello {{.FirstName}} {{.LastName}},

An account has been created for you in {{.RegistryName}}{{if .SiteCode}} for site {{.SiteName}} (PIN {{.SiteCode}}{{if .OrganizationCode}}, organization {{.OrganizationCode}}{{end}}){{end}}.

Username: {{.Username}}

To complete your registration, choose a password and accept the user agreement here:

{{.Link}}

The link can be used once and expires on {{.ExpiresAt.Format "2006-01-02 15:04 MST"}}.
{{if .HelpDesk}}Questions: {{.HelpDesk}}.
{{end}}If you did not expect this e-mail, ignore it.
`

// ParseInvitationTemplate parses an invitation e-mail template: text/template over
// InvitationData whose first line is "Subject: ...". It is tried on sample data, so that a
// template naming a field that does not exist is refused when it is loaded, not when a user is
// invited.
func ParseInvitationTemplate(src string) (*template.Template, error) {
	t, err := template.New("invitation").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("invitation template: %w", err)
	}
	sample := InvitationData{FirstName: "Maria", LastName: "Rivera", Username: "mrivera", SiteCode: "ACME-01",
		SiteName: "Acme Pediatrics", OrganizationCode: "ACME", RegistryName: "the registry", HelpDesk: "help desk",
		Link: "https://registry.example/register?token=x", ExpiresAt: time.Unix(0, 0).UTC()}
	if _, _, err := renderInvitation(t, sample); err != nil {
		return nil, err
	}
	return t, nil
}

// renderInvitation executes the template and splits off its subject line.
func renderInvitation(t *template.Template, d InvitationData) (subject, body string, err error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("invitation template: %w", err)
	}
	first, rest, _ := strings.Cut(b.String(), "\n")
	subject, ok := strings.CutPrefix(first, "Subject:")
	subject = strings.TrimSpace(subject)
	if !ok || subject == "" {
		return "", "", fmt.Errorf("invitation template: the first line must be \"Subject: ...\", not %q", first)
	}
	if !strings.Contains(rest, d.Link) {
		return "", "", fmt.Errorf("invitation template: the body must contain the registration link ({{.Link}})")
	}
	return subject, rest, nil
}

var defaultInvitation = template.Must(ParseInvitationTemplate(DefaultInvitationTemplate))
