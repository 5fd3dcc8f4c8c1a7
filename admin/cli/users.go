package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/admin"
)

func printUser(w io.Writer, u *admin.User) {
	fmt.Fprintf(w, "user\t%s (id %d)\n", u.Username, u.ID)
	fmt.Fprintf(w, "name\t%s %s\n", u.FirstName, u.LastName)
	fmt.Fprintf(w, "email\t%s\n", u.Email)
	fmt.Fprintf(w, "phone\t%s\n", orDash(u.Phone))
	fmt.Fprintf(w, "status\t%s\n", u.Status.Label())
	fmt.Fprintf(w, "locked\t%v\n", u.Locked())
	if u.RegistryAdmin {
		fmt.Fprintf(w, "registry administrator\ttrue\n")
	}
	if u.MustChangePassword {
		fmt.Fprintf(w, "must change password\ttrue\n")
	}
	fmt.Fprintf(w, "last login\t%s\n", fmtTime(u.LastLoginAt))
	for _, m := range u.Memberships {
		ds := make([]string, len(m.Designations))
		for i, d := range m.Designations {
			ds[i] = d.Label()
		}
		fmt.Fprintf(w, "site %s\t%s%s\n", m.SiteCode, m.Role.Label(), prefixed("; ", strings.Join(ds, ", ")))
	}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func designations(ds []string) ([]admin.Designation, error) {
	out := make([]admin.Designation, 0, len(ds))
	for _, d := range ds {
		x := admin.Designation(d)
		if !x.Valid() {
			return nil, fmt.Errorf("designation %q is not one of %v (see `vaxgate admin roles`)", d, admin.Designations)
		}
		out = append(out, x)
	}
	return out, nil
}

func role(r string) (admin.Role, error) {
	x := admin.Role(r)
	if !x.Valid() {
		return "", fmt.Errorf("role %q is not one of %v (see `vaxgate admin roles`)", r, admin.Roles)
	}
	return x, nil
}

// userArg runs fn on the user named by the command's single argument.
func (a *app) userArg(cmd *cobra.Command, username string, fn func(ctx context.Context, svc *admin.Service, u *admin.User) error) error {
	return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
		u, err := svc.UserByUsername(ctx, a.actor, username)
		if err != nil {
			return err
		}
		return fn(ctx, svc, u)
	})
}

func (a *app) userCommand() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Users: bootstrap, search, invite, roles, deactivation, unlock, password reset", Args: cobra.NoArgs}

	var (
		nu      admin.NewUserInput
		pw      string
		pwStdin bool
	)
	bootstrap := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the first registry administrator",
		Long: `Create the first registry administrator (active at once). Refused once one exists: further
registry administrators are invited. Without --password or --password-stdin a password is
generated and printed once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, generated, err := password(cmd, pw, pwStdin)
			if err != nil {
				return err
			}
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				u, err := svc.BootstrapRegistryAdmin(ctx, a.actor, nu, secret)
				if err != nil {
					return err
				}
				out := struct {
					*admin.User
					Password string `json:"password,omitempty"`
				}{u, ""}
				if generated {
					out.Password = secret
				}
				return a.print(cmd, out, func(w io.Writer) {
					fmt.Fprintf(w, "registry administrator %s created (id %d)\n", u.Username, u.ID)
					if generated {
						fmt.Fprintf(w, "password\t%s\t(generated; shown only now)\n", secret)
					}
				})
			})
		},
	}
	userFlags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&nu.Username, "username", "", "username (personal: no \"admin\", no generic names)")
		cmd.Flags().StringVar(&nu.FirstName, "first-name", "", "first name")
		cmd.Flags().StringVar(&nu.LastName, "last-name", "", "last name")
		cmd.Flags().StringVar(&nu.Email, "email", "", "email address")
		cmd.Flags().StringVar(&nu.Phone, "phone", "", "phone number")
		required(cmd, "username", "first-name", "last-name", "email")
	}
	userFlags(bootstrap)
	bootstrap.Flags().StringVar(&pw, "password", "", "password (12-30 characters, upper, lower, digit, special)")
	bootstrap.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin")

	var sq admin.UserQuery
	search := &cobra.Command{
		Use:   "search",
		Short: "Search users by first and last name, or by email (before inviting)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				ms, err := svc.SearchUsers(ctx, a.actor, sq)
				if err != nil {
					return err
				}
				return a.print(cmd, ms, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tUSERNAME\tNAME\tEMAIL\tSTATUS\tSITES")
					for _, m := range ms {
						fmt.Fprintf(w, "%d\t%s\t%s %s\t%s\t%s\t%s\n", m.ID, m.Username, m.FirstName, m.LastName, m.Email,
							m.Status.Label(), orDash(strings.Join(m.SiteCodes, ",")))
					}
				})
			})
		},
	}
	search.Flags().StringVar(&sq.FirstName, "first-name", "", "first name")
	search.Flags().StringVar(&sq.LastName, "last-name", "", "last name")
	search.Flags().StringVar(&sq.Email, "email", "", "email address")

	var (
		inv       admin.InviteInput
		invSite   string
		invRole   string
		invDes    []string
		printLink bool
	)
	invite := &cobra.Command{
		Use:   "invite",
		Short: "Invite a user to a site (emails a one-time registration link)",
		Long: `Invite a user to a site. The search for existing users runs first: an existing email is
refused, and existing users with the same first and last name are refused unless
--not-duplicate confirms this is someone else. The registration link is emailed through the
configured SMTP server; --print-link prints it instead (hand it over securely).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := role(invRole)
			if err != nil && !(inv.RegistryAdmin && invRole == "") {
				return err
			}
			ds, err := designations(invDes)
			if err != nil {
				return err
			}
			inv.NewUserInput, inv.Role, inv.Designations, inv.SkipEmail = nu, r, ds, printLink
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				if invSite != "" {
					s, err := svc.SiteByCode(ctx, a.actor, invSite)
					if err != nil {
						return err
					}
					inv.SiteID = s.ID
				} else if !inv.RegistryAdmin {
					return errors.New("--site is required")
				}
				res, err := svc.Invite(ctx, a.actor, inv)
				if errors.Is(err, admin.ErrMailUnavailable) && !svc.Options().SMTP.Configured() {
					return errors.New("no SMTP server is configured: configure one, or use --print-link")
				}
				if err != nil {
					return err
				}
				out := struct {
					*admin.Invitation
					Link string `json:"link,omitempty"`
				}{res, res.Link}
				return a.print(cmd, out, func(w io.Writer) {
					fmt.Fprintf(w, "user %s invited (id %d); the link expires %s\n", res.User.Username, res.User.ID, fmtTime(&res.ExpiresAt))
					if res.Emailed {
						fmt.Fprintf(w, "registration link emailed to %s\n", res.User.Email)
					}
					if res.Link != "" {
						fmt.Fprintf(w, "registration link\t%s\n", res.Link)
					}
				})
			})
		},
	}
	userFlags(invite)
	invite.Flags().StringVar(&invSite, "site", "", "site code")
	invite.Flags().StringVar(&invRole, "role", "", "role at the site (see: vaxgate admin roles)")
	invite.Flags().StringArrayVar(&invDes, "designation", nil, "MIIS designation (repeatable)")
	invite.Flags().BoolVar(&inv.NotDuplicate, "not-duplicate", false, "confirm that users with the same name are someone else")
	invite.Flags().BoolVar(&inv.RegistryAdmin, "registry-admin", false, "make the user a registry administrator")
	invite.Flags().BoolVar(&printLink, "print-link", false, "print the registration link instead of emailing it")

	var rePrint bool
	resend := &cobra.Command{
		Use:   "resend-invite USERNAME",
		Short: "Issue a new registration link to a user who has not registered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				res, err := svc.ResendInvite(ctx, a.actor, u.ID, rePrint)
				if err != nil {
					return err
				}
				return a.print(cmd, struct {
					*admin.Invitation
					Link string `json:"link,omitempty"`
				}{res, res.Link}, func(w io.Writer) {
					fmt.Fprintf(w, "new registration link for %s, expires %s\n", u.Username, fmtTime(&res.ExpiresAt))
					if res.Link != "" {
						fmt.Fprintf(w, "registration link\t%s\n", res.Link)
					}
				})
			})
		},
	}
	resend.Flags().BoolVar(&rePrint, "print-link", false, "print the registration link instead of emailing it")

	var lSite, lStatus string
	ls := &cobra.Command{
		Use:   "list",
		Short: "List users (of a site, or all)",
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
				us, err := svc.ListUsers(ctx, a.actor, id, admin.UserStatus(lStatus))
				if err != nil {
					return err
				}
				return a.print(cmd, us, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tUSERNAME\tNAME\tSTATUS\tLOCKED\tSITES")
					for _, u := range us {
						var sites []string
						for _, m := range u.Memberships {
							s := m.SiteCode + ":" + string(m.Role)
							if m.AccessAdministrator() {
								s += "+AA"
							}
							sites = append(sites, s)
						}
						if u.RegistryAdmin {
							sites = append(sites, "registry-admin")
						}
						fmt.Fprintf(w, "%d\t%s\t%s %s\t%s\t%v\t%s\n", u.ID, u.Username, u.FirstName, u.LastName,
							u.Status.Label(), u.Locked(), orDash(strings.Join(sites, " ")))
					}
				})
			})
		},
	}
	ls.Flags().StringVar(&lSite, "site", "", "only this site's users")
	ls.Flags().StringVar(&lStatus, "status", "", "only users with this status (invited, active, inactive_manual, inactive_expired)")

	show := &cobra.Command{
		Use:   "show USERNAME",
		Short: "Show a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.userArg(cmd, args[0], func(_ context.Context, _ *admin.Service, u *admin.User) error {
				return a.print(cmd, u, func(w io.Writer) { printUser(w, u) })
			})
		},
	}

	op := func(use, short string, fn func(*admin.Service) func(context.Context, admin.Actor, int64) (*admin.User, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " USERNAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
					u, err := fn(svc)(ctx, a.actor, u.ID)
					if err != nil {
						return err
					}
					return a.print(cmd, u, func(w io.Writer) { printUser(w, u) })
				})
			},
		}
	}

	var rpw string
	var rpwStdin bool
	reset := &cobra.Command{
		Use:   "reset-password USERNAME",
		Short: "Set a temporary password, to be changed at the next login",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret := rpw
			if rpwStdin {
				var err error
				if secret, _, err = password(cmd, rpw, true); err != nil {
					return err
				}
			}
			return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				u, generated, err := svc.ResetPassword(ctx, a.actor, u.ID, secret)
				if err != nil {
					return err
				}
				return a.print(cmd, struct {
					*admin.User
					TemporaryPassword string `json:"temporary_password,omitempty"`
				}{u, generated}, func(w io.Writer) {
					fmt.Fprintf(w, "password of %s reset; it must be changed at the next login\n", u.Username)
					if generated != "" {
						fmt.Fprintf(w, "temporary password\t%s\t(shown only now)\n", generated)
					}
				})
			})
		},
	}
	reset.Flags().StringVar(&rpw, "password", "", "the temporary password (default: generated)")
	reset.Flags().BoolVar(&rpwStdin, "password-stdin", false, "read the temporary password from stdin")

	var (
		srSite  string
		srRole  string
		srDes   []string
		srClear bool
	)
	setRole := &cobra.Command{
		Use:   "set-role USERNAME",
		Short: "Change the role and designations of a member of a site",
		Long: `Change a member's role at a site. Without --designation the current designations are
kept; --designation replaces them, --clear-designations removes them all. The last active access
administrator of a site cannot be demoted. A user who is not a member of the site is not added:
invite them (invite-to-site), they accept after logging in.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := role(srRole)
			if err != nil {
				return err
			}
			var ds []admin.Designation
			if len(srDes) > 0 || srClear {
				if ds, err = designations(srDes); err != nil {
					return err
				}
			}
			return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				s, err := siteByCode(ctx, svc, a.actor, srSite)
				if err != nil {
					return err
				}
				if u, err = svc.SetMembership(ctx, a.actor, u.ID, s.ID, r, ds); err != nil {
					return err
				}
				return a.print(cmd, u, func(w io.Writer) { printUser(w, u) })
			})
		},
	}
	setRole.Flags().StringVar(&srSite, "site", "", "site code")
	setRole.Flags().StringVar(&srRole, "role", "", "role (see: vaxgate admin roles)")
	setRole.Flags().StringArrayVar(&srDes, "designation", nil, "MIIS designation (repeatable; replaces the current ones)")
	setRole.Flags().BoolVar(&srClear, "clear-designations", false, "remove all designations")
	required(setRole, "site", "role")

	var (
		itSite, itRole string
		itDes          []string
	)
	inviteToSite := &cobra.Command{
		Use:   "invite-to-site USERNAME",
		Short: "Invite an existing user to a site; they become a member when they accept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := role(itRole)
			if err != nil {
				return err
			}
			ds, err := designations(itDes)
			if err != nil {
				return err
			}
			return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				s, err := siteByCode(ctx, svc, a.actor, itSite)
				if err != nil {
					return err
				}
				inv, err := svc.InviteToSite(ctx, a.actor, admin.SiteInvitationInput{UserID: u.ID, SiteID: s.ID, Role: r, Designations: ds})
				if err != nil {
					return err
				}
				return a.print(cmd, inv, func(w io.Writer) {
					fmt.Fprintf(w, "invitation %d: %s to site %s as %s, until %s; %s accepts it after logging in\n",
						inv.ID, inv.Username, inv.SiteCode, inv.Role.Label(), inv.ExpiresAt.Format("2006-01-02"), inv.Username)
				})
			})
		},
	}
	inviteToSite.Flags().StringVar(&itSite, "site", "", "site code")
	inviteToSite.Flags().StringVar(&itRole, "role", "", "role (see: vaxgate admin roles)")
	inviteToSite.Flags().StringArrayVar(&itDes, "designation", nil, "MIIS designation (repeatable)")
	required(inviteToSite, "site", "role")

	var rmSite string
	remove := &cobra.Command{
		Use:   "remove-from-site USERNAME",
		Short: "Remove a user from a site",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.userArg(cmd, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				s, err := siteByCode(ctx, svc, a.actor, rmSite)
				if err != nil {
					return err
				}
				if u, err = svc.RemoveMembership(ctx, a.actor, u.ID, s.ID); err != nil {
					return err
				}
				return a.print(cmd, u, func(w io.Writer) { printUser(w, u) })
			})
		},
	}
	remove.Flags().StringVar(&rmSite, "site", "", "site code")
	required(remove, "site")

	expire := &cobra.Command{
		Use:   "expire-inactive",
		Short: "Mark Inactive Expired every account unused for the inactivity period (90 days)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				n, err := svc.ExpireInactive(ctx)
				if err != nil {
					return err
				}
				return a.print(cmd, map[string]int{"expired": n}, func(w io.Writer) { fmt.Fprintf(w, "%d account(s) expired\n", n) })
			})
		},
	}

	c.AddCommand(bootstrap, search, invite, resend, ls, show,
		op("deactivate", "Deactivate a user (Inactive Manual)", func(s *admin.Service) func(context.Context, admin.Actor, int64) (*admin.User, error) {
			return s.Deactivate
		}),
		op("reactivate", "Reactivate an Inactive Manual or Inactive Expired user", func(s *admin.Service) func(context.Context, admin.Actor, int64) (*admin.User, error) {
			return s.Reactivate
		}),
		op("unlock", "Unlock an account locked after failed logins", func(s *admin.Service) func(context.Context, admin.Actor, int64) (*admin.User, error) {
			return s.Unlock
		}),
		reset, setRole, inviteToSite, remove, expire)
	return c
}

// --- data sharing, audit, roles ---

func (a *app) sharingCommand() *cobra.Command {
	c := &cobra.Command{Use: "sharing", Short: "Patients' data-sharing status", Args: cobra.NoArgs}
	var in admin.SharingInput
	var status string
	set := &cobra.Command{
		Use:   "set PATIENT_ID",
		Short: "Set a registry patient's data-sharing status: N (objection), Y (withdrawal, or resolve Unknown)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("patient id %q is not a number", args[0])
			}
			in.Status = admin.Sharing(strings.ToUpper(status))
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				ch, err := svc.SetSharing(ctx, a.actor, id, in)
				if err != nil {
					return err
				}
				return a.print(cmd, ch, func(w io.Writer) {
					fmt.Fprintf(w, "patient %d: data sharing %s → %s (form %s, attestation %s)\n", id, ch.OldStatus, ch.NewStatus, orDash(ch.FormRef), orDash(ch.Attestation))
				})
			})
		},
	}
	set.Flags().StringVar(&status, "status", "", "Y or N")
	set.Flags().StringVar(&in.FormRef, "form", "", "reference of the signed form (this or --attestation is required)")
	set.Flags().StringVar(&in.Attestation, "attestation", "", "how the patient's decision was given, when there is no form (e.g. \"mother, by phone, 2025-03-01\")")
	set.Flags().StringVar(&in.Reason, "reason", "", "reason")
	required(set, "status")
	c.AddCommand(set)
	return c
}

func (a *app) auditCommand() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "The audit log of admin actions and data-sharing changes", Args: cobra.NoArgs}
	var (
		f     admin.AuditFilter
		site  string
		since string
	)
	ls := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				d, err := date(since)
				if err != nil {
					return err
				}
				f.Since = d.Time()
			}
			return a.with(cmd, func(ctx context.Context, svc *admin.Service) error {
				if site != "" {
					s, err := svc.SiteByCode(ctx, a.actor, site)
					if err != nil {
						return err
					}
					f.SiteIDs = []int64{s.ID}
				}
				es, err := svc.ListAudit(ctx, a.actor, f)
				if err != nil {
					return err
				}
				return a.print(cmd, es, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tAT\tACTOR\tACTION\tTARGET\tBEFORE\tAFTER")
					for _, e := range es {
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s %s\t%s\t%s\n", e.ID, fmtTime(&e.At), e.Actor, e.Action, e.TargetType,
							e.TargetID, orDash(string(e.Before)), orDash(string(e.After)))
					}
				})
			})
		},
	}
	ls.Flags().StringVar(&site, "site", "", "only entries about this site")
	ls.Flags().StringVar(&f.Action, "action", "", `only this action, or a prefix ending in "." (e.g. user.)`)
	ls.Flags().StringVar(&f.TargetType, "target-type", "", "only this target type (user, site, credential, organization, patient)")
	ls.Flags().StringVar(&f.TargetID, "target-id", "", "only this target id")
	ls.Flags().StringVar(&since, "since", "", "only entries from this date (YYYY-MM-DD)")
	ls.Flags().IntVar(&f.Limit, "limit", 100, "at most this many entries")
	c.AddCommand(ls)
	return c
}

func (a *app) rolesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "roles",
		Short: "List the roles and MIIS designations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type item struct{ Code, Label string }
			var roles, des []item
			for _, r := range admin.Roles {
				roles = append(roles, item{string(r), r.Label()})
			}
			for _, d := range admin.Designations {
				des = append(des, item{string(d), d.Label()})
			}
			return a.print(cmd, map[string][]item{"roles": roles, "designations": des}, func(w io.Writer) {
				fmt.Fprintln(w, "ROLE\tNAME")
				for _, r := range roles {
					fmt.Fprintf(w, "%s\t%s\n", r.Code, r.Label)
				}
				fmt.Fprintln(w, "\nDESIGNATION\tNAME")
				for _, d := range des {
					fmt.Fprintf(w, "%s\t%s\n", d.Code, d.Label)
				}
			})
		},
	}
}
