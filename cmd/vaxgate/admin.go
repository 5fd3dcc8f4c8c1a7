package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/cli"
	"github.com/vaxgate/vaxgate/store"
)

// localMailDrop gives a private installation (no database_url: the newcomer's `make run`) without
// a mail server a mail drop folder, <data_dir>/mail, so that invitations work out of the box, for
// serve and for `vaxgate admin` beside it alike. It reports whether it did.
func localMailDrop(c *config) bool {
	if c.SMTP.Addr != "" || c.SMTP.Dir != "" || c.DatabaseURL != "" {
		return false
	}
	c.SMTP.Dir = filepath.Join(c.DataDir, "mail")
	if c.SMTP.From == "" {
		c.SMTP.From = "registry@localhost"
	}
	return true
}

func newAdminService(c *config, db *store.DB, log *zap.Logger) (*admin.Service, error) {
	localMailDrop(c)
	base := c.HTTP.PublicURL
	if base == "" {
		base = "http://" + localAddr(c.HTTP.Addr)
	}
	var invitation *template.Template
	if c.Registry.InvitationTemplate != "" {
		src, err := os.ReadFile(c.Registry.InvitationTemplate)
		if err != nil {
			return nil, fmt.Errorf("config: registry.invitation_template: %w", err)
		}
		if invitation, err = admin.ParseInvitationTemplate(string(src)); err != nil {
			return nil, fmt.Errorf("config: registry.invitation_template %s: %w", c.Registry.InvitationTemplate, err)
		}
	}
	return admin.NewService(store.NewAdminStore(db), admin.Options{
		Logger:  log,
		BaseURL: base,
		SMTP: admin.SMTPConfig{
			Addr: c.SMTP.Addr, From: c.SMTP.From, Username: c.SMTP.Username, Password: c.SMTP.Password, Dir: c.SMTP.Dir,
		},
		RegistryName: c.Registry.Name, HelpDesk: c.Registry.HelpDesk, Invitation: invitation,
	}), nil
}

// ensureFirstAdmin creates the first registry administrator at the first start of a registry
// that has none, and prints its one-time password (to be changed at the first sign-in) once.
func ensureFirstAdmin(ctx context.Context, svc *admin.Service, w io.Writer, c *config) error {
	u, password, err := svc.EnsureFirstRegistryAdmin(ctx, admin.SystemActor("serve"), admin.NewUserInput{
		Username: c.Registry.FirstAdminUsername, FirstName: "Registry", LastName: "Administrator",
		Email: c.Registry.FirstAdminEmail,
	})
	if err != nil {
		return fmt.Errorf("first registry administrator: %w", err)
	}
	if u == nil {
		return nil
	}
	base := c.HTTP.PublicURL
	if base == "" {
		base = "http://" + localAddr(c.HTTP.Addr)
	}
	fmt.Fprintf(w, `
First start: registry administrator %q created. Sign in at %s/ with this one-time password
(shown only now; you choose your own at the first sign-in):
  username %s  password %s
`, u.Username, strings.TrimRight(base, "/"), u.Username, password)
	return nil
}

// newAdminCmd is `vaxgate admin ...`: the admin module's tasks against the configured database.
func newAdminCmd() *cobra.Command {
	var cmd *cobra.Command
	open := func(ctx context.Context) (*admin.Service, func(), error) {
		c, err := loadConfig(cmd)
		if err != nil {
			return nil, nil, err
		}
		c.Log.Format = "console"
		if c.Log.Level == "info" {
			c.Log.Level = "warn"
		}
		log, err := newLogger(c)
		if err != nil {
			return nil, nil, err
		}
		db, closeDB, err := toolDatabase(ctx, c, log)
		if err != nil {
			return nil, nil, err
		}
		svc, err := newAdminService(c, db, log)
		if err != nil {
			closeDB()
			return nil, nil, err
		}
		return svc, closeDB, nil
	}
	cmd = cli.Command(open)
	addCommonFlags(cmd.PersistentFlags())
	return cmd
}

// The demo site of `make run`: a production site that may send for the facilities of the public
// sample messages, reachable over MLLP from this machine and over SOAP with printed credentials.
const (
	demoOrg      = "DEMO"
	demoSite     = "DEMO-SITE"
	demoSOAPUser = "demo-ehr"
)

var demoFacilities = []string{"DEMO", "X68", "RI88140101", "1255-60-20", "91116"}

func setUpDemo(ctx context.Context, svc *admin.Service, w io.Writer, c *config, log *zap.Logger) error {
	actor := admin.SystemActor("serve --demo")
	if _, err := svc.EnsureOrganization(ctx, actor, admin.OrganizationInput{Code: demoOrg, Name: "Demo Health"}); err != nil {
		return fmt.Errorf("demo organization: %w", err)
	}
	site, err := svc.EnsureSite(ctx, actor, admin.SiteInput{
		OrganizationCode: demoOrg, Code: demoSite, Name: "Demo Clinic", Status: admin.SiteProduction, Facilities: demoFacilities,
	})
	if err != nil {
		return fmt.Errorf("demo site: %w", err)
	}
	for _, cidr := range []string{"127.0.0.0/8", "::1/128"} {
		if _, err := svc.EnsureMLLPCredential(ctx, actor, site.ID, cidr, ""); err != nil {
			return fmt.Errorf("demo MLLP credential: %w", err)
		}
	}
	password, file, keepErr := demoSOAPPassword(c.DataDir)
	kept := "kept in " + file + " for the next starts (delete it for a new one)"
	if keepErr != nil {
		// The demo still works for this run; the password is never logged, only printed below.
		log.Warn("demo SOAP password not kept: a new one at the next start", zap.String("file", file), zap.Error(keepErr))
		if password, err = admin.GeneratePassword(); err != nil {
			return err
		}
		kept = "not kept (see the warning): a new one at the next start"
	}
	if _, err := svc.EnsureSOAPCredential(ctx, actor, site.ID, demoSOAPUser, password, "X68"); err != nil {
		if keepErr == nil {
			return fmt.Errorf("demo SOAP credential, password from %s: %w", file, err)
		}
		return fmt.Errorf("demo SOAP credential: %w", err)
	}
	fmt.Fprintf(w, `
Demo site %s (production) may send for MSH-4 %v.
  MLLP: from this machine: ./bin/vaxgate send --addr %s ../shared/corpus/vxu/nist_mu2_NIST-IZ-001.00.hl7
  SOAP: http://%s/soap  username %s  password %s  facilityID X68
        (the password is %s)
`, site.Code, site.Facilities, localAddr(c.MLLP.Addr), localAddr(c.HTTP.Addr), demoSOAPUser, password, kept)
	return nil
}

// demoSOAPPasswordName is the file, in the data dir, that keeps the demo's SOAP password (mode
// 0600, as the private PostgreSQL's superuser.password is kept), so that a SOAP client set up
// after the first `make run` keeps working after a restart. It is kept there with a database URL
// too: the database holds only the password's hash.
const demoSOAPPasswordName = "demo-soap.password"

// demoSOAPPassword returns the demo SOAP password kept in dataDir, generating and keeping one when
// there is none yet, and the file's path. Concurrent first starts agree on one password: the file
// appears whole (written aside, then linked into place) and whoever links second reads it.
func demoSOAPPassword(dataDir string) (password, file string, err error) {
	file = filepath.Join(dataDir, demoSOAPPasswordName)
	if password, err = readDemoSOAPPassword(file); !errors.Is(err, fs.ErrNotExist) {
		return password, file, err
	}
	generated, err := admin.GeneratePassword()
	if err != nil {
		return "", file, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", file, fmt.Errorf("demo SOAP password: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, "."+demoSOAPPasswordName+"-*") // mode 0600
	if err != nil {
		return "", file, fmt.Errorf("demo SOAP password: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(generated + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", file, fmt.Errorf("demo SOAP password: %w", err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) { // another start kept one first
			password, err = readDemoSOAPPassword(file)
			return password, file, err
		}
		return "", file, fmt.Errorf("demo SOAP password: %w", err)
	}
	return generated, file, nil
}

func readDemoSOAPPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("demo SOAP password: %w", err)
	}
	password := strings.TrimSpace(string(b))
	if password == "" {
		return "", fmt.Errorf("demo SOAP password: %s is empty: delete it for a new password", file)
	}
	return password, nil
}

// localAddr turns a listen address into one a client on this machine can use (":2575" →
// "localhost:2575").
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
