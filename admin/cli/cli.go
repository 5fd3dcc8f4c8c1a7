// Package cli is the `vaxgate admin` command tree: organizations, sites and their onboarding
// status, sender credentials, users, data sharing and the audit log, from the command line. It
// acts as the operator (admin.OperatorActor: whoever can run it can reach the database anyway,
// so it may do what registry staff may), named "cli:<os-user>" in the audit log, and goes
// through admin.Service and its decision point, so the rules are the same as through the API.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/admin"
)

// Opener opens the admin service; the returned function releases it (database pool and so on).
type Opener func(ctx context.Context) (*admin.Service, func(), error)

type app struct {
	open  Opener
	json  bool
	actor admin.Actor
}

// Command returns the `admin` command. open is called by each subcommand that needs the
// database, after its arguments were checked.
func Command(open func(ctx context.Context) (*admin.Service, func(), error)) *cobra.Command {
	a := &app{open: open, actor: admin.OperatorActor(operator())}
	root := &cobra.Command{
		Use:   "admin",
		Short: "Manage organizations, sites, sender credentials, users, data sharing and the audit log",
		Long: `Admin tasks from the command line. They go through the same rules as the JSON API
(/api/v1) and are recorded in the audit log as actor "cli:<your OS user>" (the user who ran
sudo, when run through sudo).

Typical onboarding of a sending site:
  vaxgate admin org create --code HS1 --name "Health System One"
  vaxgate admin site create --org HS1 --code CLINIC1 --name "Clinic One" --facility CLINIC1
  vaxgate admin sender add-soap --site CLINIC1 --username clinic1-ehr --facility CLINIC1
  vaxgate admin user invite --site CLINIC1 --username jroe --first-name Jo --last-name Roe \
      --email jo.roe@clinic1.example --role administrator --designation access_administrator
  (once Jo has registered through the e-mailed link: a site moves to testing only with an
  active Access Administrator)
  vaxgate admin site set-status CLINIC1 testing

First registry administrator:
  vaxgate admin user bootstrap --username jdoe --first-name Jane --last-name Doe --email jane@example.org`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print results as JSON")
	root.AddCommand(a.orgCommand(), a.siteCommand(), a.senderCommand(), a.userCommand(),
		a.sharingCommand(), a.auditCommand(), a.rolesCommand())
	silence(root)
	return root
}

// operator names the person at the command line: the user who ran sudo when run through sudo,
// else the OS user.
func operator() string {
	if su := os.Getenv("SUDO_USER"); su != "" && os.Geteuid() == 0 {
		return su
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return fmt.Sprintf("uid%d", os.Getuid())
}

// silence makes errors one line: no usage dump after an error (the caller prints the error).
func silence(c *cobra.Command) {
	c.SilenceUsage = true
	for _, sub := range c.Commands() {
		silence(sub)
	}
}

// with opens the service, runs fn and releases the service.
func (a *app) with(cmd *cobra.Command, fn func(ctx context.Context, svc *admin.Service) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	svc, closeFn, err := a.open(ctx)
	if err != nil {
		return err
	}
	if closeFn != nil {
		defer closeFn()
	}
	if err := fn(ctx, svc); err != nil {
		var e *admin.Error
		if errors.As(err, &e) && e.Kind != admin.KindInternal {
			return errors.New(e.Message) // the user's error, in one line
		}
		return err
	}
	return nil
}

// print writes v as JSON with --json, else calls text.
func (a *app) print(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	out := cmd.OutOrStdout()
	if a.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// password returns the password from --password, --password-stdin, or a generated one (the
// caller prints it once).
func password(cmd *cobra.Command, flag string, fromStdin bool) (pw string, generated bool, err error) {
	if flag != "" && fromStdin {
		return "", false, errors.New("use either --password or --password-stdin")
	}
	if fromStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", false, errors.New("no password on stdin")
		}
		return line, false, nil
	}
	if flag != "" {
		return flag, false, nil
	}
	pw, err = admin.GeneratePassword()
	return pw, true, err
}

func date(s string) (admin.Date, error) {
	if s == "" {
		return admin.Date{}, nil
	}
	d, err := admin.ParseDate(s)
	if err != nil {
		return admin.Date{}, errors.New(admin.AsError(err).Message)
	}
	return d, nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func siteByCode(ctx context.Context, svc *admin.Service, a admin.Actor, code string) (*admin.Site, error) {
	if code == "" {
		return nil, errors.New("--site is required")
	}
	return svc.SiteByCode(ctx, a, code)
}

func required(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		_ = cmd.MarkFlagRequired(n)
	}
}

// --- organizations ---

func (a *app) orgCommand() *cobra.Command {
	c := &cobra.Command{Use: "org", Short: "Organizations (health systems have a parent and child organizations)", Args: cobra.NoArgs}
	var in admin.OrganizationInput
	create := &cobra.Command{
		Use:   "create",
		Short: "Register an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				o, err := svc.CreateOrganization(ctx, a.actor, in)
				if err != nil {
					return err
				}
				return a.print(cmd, o, func(w io.Writer) { fmt.Fprintf(w, "organization %s created (id %d)\n", o.Code, o.ID) })
			})
		},
	}
	create.Flags().StringVar(&in.Code, "code", "", "organization code (PIN)")
	create.Flags().StringVar(&in.Name, "name", "", "organization name")
	create.Flags().StringVar(&in.ParentCode, "parent", "", "code of the parent organization (health system)")
	required(create, "code", "name")

	ls := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				os, err := svc.ListOrganizations(ctx, a.actor)
				if err != nil {
					return err
				}
				byID := map[int64]string{}
				for _, o := range os {
					byID[o.ID] = o.Code
				}
				return a.print(cmd, os, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tCODE\tNAME\tPARENT")
					for _, o := range os {
						parent := "-"
						if o.ParentID != nil {
							parent = byID[*o.ParentID]
						}
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", o.ID, o.Code, o.Name, parent)
					}
				})
			})
		},
	}
	c.AddCommand(create, ls)
	return c
}

// --- sites ---

func printSite(w io.Writer, s *admin.Site) {
	fmt.Fprintf(w, "site\t%s (id %d)\n", s.Code, s.ID)
	fmt.Fprintf(w, "name\t%s\n", s.Name)
	fmt.Fprintf(w, "organization\t%s\n", s.OrganizationCode)
	fmt.Fprintf(w, "status\t%s\n", s.Status)
	fmt.Fprintf(w, "go-live date\t%s\n", orDash(s.GoLive.String()))
	fmt.Fprintf(w, "facilities (MSH-4)\t%s\n", orDash(strings.Join(s.Facilities, ", ")))
	if s.NeedsAA {
		fmt.Fprintf(w, "needs access administrator\tyes, since %s (no active access administrator; registry staff were told)\n", fmtTime(s.NeedsAASince))
	}
}

func (a *app) siteCommand() *cobra.Command {
	c := &cobra.Command{Use: "site", Short: "Sites: onboarding status, go-live date, MSH-4 facility identifiers", Args: cobra.NoArgs}

	var (
		in     admin.SiteInput
		status string
		goLive string
		ensure bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a site of an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := date(goLive)
			if err != nil {
				return err
			}
			in.GoLive, in.Status = d, admin.SiteStatus(status)
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				var s *admin.Site
				var err error
				if ensure {
					s, err = svc.EnsureSite(ctx, a.actor, in)
				} else {
					s, err = svc.CreateSite(ctx, a.actor, in)
				}
				if err != nil {
					return err
				}
				return a.print(cmd, s, func(w io.Writer) { printSite(w, s) })
			})
		},
	}
	create.Flags().StringVar(&in.OrganizationCode, "org", "", "organization code")
	create.Flags().StringVar(&in.Code, "code", "", "site code (PIN)")
	create.Flags().StringVar(&in.Name, "name", "", "site name")
	create.Flags().StringVar(&status, "status", "", "onboarding status: registered (default), testing or production")
	create.Flags().StringVar(&goLive, "go-live", "", "go-live date YYYY-MM-DD (production without one: today)")
	create.Flags().StringArrayVar(&in.Facilities, "facility", nil, "MSH-4 sending facility identifier (repeatable)")
	create.Flags().BoolVar(&ensure, "ensure", false, "succeed if the site exists (adding missing facilities)")
	required(create, "org", "code", "name")

	var (
		listOrg, listStatus string
		listNeedsAA         bool
	)
	ls := &cobra.Command{
		Use:   "list",
		Short: "List sites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				f := admin.SiteFilter{Status: admin.SiteStatus(listStatus), NeedsAA: listNeedsAA}
				if listOrg != "" {
					os, err := svc.ListOrganizations(ctx, a.actor)
					if err != nil {
						return err
					}
					for _, o := range os {
						if o.Code == listOrg {
							f.OrganizationID = o.ID
						}
					}
					if f.OrganizationID == 0 {
						return fmt.Errorf("organization %q not found", listOrg)
					}
				}
				sites, err := svc.ListSites(ctx, a.actor, f)
				if err != nil {
					return err
				}
				return a.print(cmd, sites, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tCODE\tORG\tSTATUS\tGO-LIVE\tNEEDS-AA\tFACILITIES\tNAME")
					for _, s := range sites {
						needs := "-"
						if s.NeedsAA {
							needs = "yes"
						}
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Code, s.OrganizationCode, s.Status,
							orDash(s.GoLive.String()), needs, orDash(strings.Join(s.Facilities, ",")), s.Name)
					}
				})
			})
		},
	}
	ls.Flags().StringVar(&listOrg, "org", "", "only this organization's sites")
	ls.Flags().StringVar(&listStatus, "status", "", "only sites with this status")
	ls.Flags().BoolVar(&listNeedsAA, "needs-aa", false, "only sites in testing or production without an active access administrator")

	show := &cobra.Command{
		Use:   "show SITE",
		Short: "Show a site",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				s, err := svc.SiteByCode(ctx, a.actor, args[0])
				if err != nil {
					return err
				}
				return a.print(cmd, s, func(w io.Writer) { printSite(w, s) })
			})
		},
	}

	var setGoLive string
	setStatus := &cobra.Command{
		Use:   "set-status SITE registered|testing|production",
		Short: "Move a site through onboarding (registered → testing → production)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := date(setGoLive)
			if err != nil {
				return err
			}
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				s, err := svc.SiteByCode(ctx, a.actor, args[0])
				if err != nil {
					return err
				}
				if s, err = svc.SetSiteStatus(ctx, a.actor, s.ID, admin.SiteStatus(args[1]), d); err != nil {
					return err
				}
				return a.print(cmd, s, func(w io.Writer) { printSite(w, s) })
			})
		},
	}
	setStatus.Flags().StringVar(&setGoLive, "go-live", "", "go-live date YYYY-MM-DD")

	facility := func(use, short string, add bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " SITE FACILITY",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
					s, err := svc.SiteByCode(ctx, a.actor, args[0])
					if err != nil {
						return err
					}
					if add {
						s, err = svc.AddSiteFacility(ctx, a.actor, s.ID, args[1])
					} else {
						s, err = svc.RemoveSiteFacility(ctx, a.actor, s.ID, args[1])
					}
					if err != nil {
						return err
					}
					return a.print(cmd, s, func(w io.Writer) { printSite(w, s) })
				})
			},
		}
	}
	c.AddCommand(create, ls, show, setStatus,
		facility("add-facility", "Add an MSH-4 facility identifier to a site", true),
		facility("remove-facility", "Remove an MSH-4 facility identifier from a site", false))
	return c
}

// --- sender credentials ---

func printCreds(w io.Writer, cs []admin.SenderCredential) {
	fmt.Fprintln(w, "ID\tSITE\tTRANSPORT\tUSERNAME\tFACILITY\tSOURCE\tCERT SUBJECT\tACTIVE")
	for _, c := range cs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", c.ID, c.SiteCode, c.Transport, orDash(c.Username),
			orDash(c.FacilityID), orDash(c.SourceCIDR), orDash(c.CertSubject), c.Active)
	}
}

func (a *app) senderCommand() *cobra.Command {
	c := &cobra.Command{Use: "sender", Short: "Sender credentials of sites (SOAP and MLLP)", Args: cobra.NoArgs}

	var (
		site, username, pw, facility string
		pwStdin, update              bool
	)
	soap := &cobra.Command{
		Use:   "add-soap",
		Short: "Give a site a SOAP credential (username, password, facilityID)",
		Long: `Give a site a SOAP credential. The facility identifier is added to the site's MSH-4
identifiers. Without --password or --password-stdin a password is generated and printed once.
With --update an existing credential of the same site and username gets the new password.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, generated, err := password(cmd, pw, pwStdin)
			if err != nil {
				return err
			}
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				s, err := siteByCode(ctx, svc, a.actor, site)
				if err != nil {
					return err
				}
				var cr *admin.SenderCredential
				if update {
					cr, err = svc.EnsureSOAPCredential(ctx, a.actor, s.ID, username, secret, facility)
				} else {
					cr, err = svc.CreateSOAPCredential(ctx, a.actor, s.ID, username, secret, facility)
				}
				if err != nil {
					return err
				}
				out := struct {
					*admin.SenderCredential
					Password string `json:"password,omitempty"`
				}{cr, ""}
				if generated {
					out.Password = secret
				}
				return a.print(cmd, out, func(w io.Writer) {
					fmt.Fprintf(w, "SOAP credential %d for site %s\n", cr.ID, cr.SiteCode)
					fmt.Fprintf(w, "username\t%s\n", cr.Username)
					fmt.Fprintf(w, "facilityID\t%s\n", cr.FacilityID)
					if !slices.Contains(s.Facilities, cr.FacilityID) {
						fmt.Fprintf(w, "site %s may now also send for MSH-4 %s (added to its facilities)\n", cr.SiteCode, cr.FacilityID)
					}
					if generated {
						fmt.Fprintf(w, "password\t%s\t(generated; shown only now)\n", secret)
					}
				})
			})
		},
	}
	soap.Flags().StringVar(&site, "site", "", "site code")
	soap.Flags().StringVar(&username, "username", "", "SOAP username")
	soap.Flags().StringVar(&pw, "password", "", "SOAP password (12-128 characters)")
	soap.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin")
	soap.Flags().StringVar(&facility, "facility", "", "SOAP facilityID (an MSH-4 identifier of the site)")
	soap.Flags().BoolVar(&update, "update", false, "update the credential if this site already has it")
	required(soap, "site", "username", "facility")

	var (
		mSite, cidr, subject string
		mEnsure              bool
	)
	mllp := &cobra.Command{
		Use:   "add-mllp",
		Short: "Give a site an MLLP credential (source address range and/or TLS client certificate subject)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				s, err := siteByCode(ctx, svc, a.actor, mSite)
				if err != nil {
					return err
				}
				create := svc.CreateMLLPCredential
				if mEnsure {
					create = svc.EnsureMLLPCredential
				}
				cr, err := create(ctx, a.actor, s.ID, cidr, subject)
				if err != nil {
					return err
				}
				return a.print(cmd, cr, func(w io.Writer) { printCreds(w, []admin.SenderCredential{*cr}) })
			})
		},
	}
	mllp.Flags().StringVar(&mSite, "site", "", "site code")
	mllp.Flags().StringVar(&cidr, "cidr", "", "source address or CIDR range, e.g. 10.1.2.0/24")
	mllp.Flags().StringVar(&subject, "cert-subject", "", "TLS client certificate subject DN")
	mllp.Flags().BoolVar(&mEnsure, "ensure", false, "succeed if the site already has this credential")
	required(mllp, "site")

	var lSite string
	ls := &cobra.Command{
		Use:   "list",
		Short: "List sender credentials (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				var id int64
				if lSite != "" {
					s, err := svc.SiteByCode(ctx, a.actor, lSite)
					if err != nil {
						return err
					}
					id = s.ID
				}
				cs, err := svc.ListCredentials(ctx, a.actor, id)
				if err != nil {
					return err
				}
				return a.print(cmd, cs, func(w io.Writer) { printCreds(w, cs) })
			})
		},
	}
	ls.Flags().StringVar(&lSite, "site", "", "only this site's credentials")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a sender credential",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("credential id %q is not a number", args[0])
			}
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				cr, err := svc.RevokeCredential(ctx, a.actor, id)
				if err != nil {
					return err
				}
				return a.print(cmd, cr, func(w io.Writer) { fmt.Fprintf(w, "credential %d revoked\n", cr.ID) })
			})
		},
	}
	c.AddCommand(soap, mllp, ls, revoke)
	return c
}
