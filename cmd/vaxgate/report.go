package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

// loadPlan reads the test plan of file, or the default plan when file is empty.
func loadPlan(file string) (*report.Plan, error) {
	if file == "" {
		return report.DefaultPlan(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("test plan: %w", err)
	}
	defer f.Close()
	p, err := report.LoadPlan(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// newReportService is the report service over db with the configured (or given) plan.
func newReportService(db *store.DB, planFile string) (*report.Service, error) {
	plan, err := loadPlan(planFile)
	if err != nil {
		return nil, err
	}
	return report.NewService(store.NewReportStore(db), report.Options{Plan: plan}), nil
}

// reportOutput is how a report is printed.
type reportOutput struct {
	json, csv bool
}

func (o reportOutput) write(w io.Writer, v interface {
	WriteText(io.Writer) error
	WriteCSV(io.Writer) error
}) error {
	switch {
	case o.json && o.csv:
		return errors.New("--json and --csv exclude each other")
	case o.json:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case o.csv:
		return v.WriteCSV(w)
	}
	return v.WriteText(w)
}

// newReportCmd is `vaxgate report ...`: certification, data quality and reconciliation.
func newReportCmd() *cobra.Command {
	var planFile, siteCode string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Onboarding and certification reports: certification status, data quality, message-count reconciliation",
		Long: `Reports about a site, read from the message archive of the configured database.

  certification  the site's test messages matched to the test plan's cases: passed, failed
                 (with the message and its findings), not yet attempted; findings by rule;
                 the production-readiness checklist and its sign-offs
  sign-off       sign off (or --revoke) a readiness item for the site (audited)
  quality        volumes, ACK codes, error and warning rates by rule, completeness,
                 timeliness and a weekly trend, for a period and environment
  reconcile      the site's count, or file of MSH-10 control IDs, for a period against
                 what was received: accepted, rejected, missing, unexpected
  plan           print the test plan in use (the default one, or --plan FILE checked)

Periods: --from and --to are dates (YYYY-MM-DD, UTC, --to included) or RFC 3339 times
(--to excluded). The test plan is --plan FILE, else the configuration's report.plan, else the
default plan (the CDC guide's use cases).`,
		Args: cobra.NoArgs,
	}
	addCommonFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&planFile, "plan", "", "test plan YAML file (env VAXGATE_REPORT_PLAN; default: the built-in plan)")

	// open returns the configured service and site.
	open := func(c *cobra.Command, needSite bool) (*report.Service, *report.Site, func(), error) {
		cfg, err := loadConfig(c)
		if err != nil {
			return nil, nil, nil, err
		}
		if planFile == "" {
			planFile = cfg.Report.Plan
		}
		plan, err := loadPlan(planFile)
		if err != nil {
			return nil, nil, nil, err
		}
		if needSite && strings.TrimSpace(siteCode) == "" {
			return nil, nil, nil, errors.New("--site is required")
		}
		cfg.Log.Format = "console"
		if cfg.Log.Level == "info" {
			cfg.Log.Level = "warn"
		}
		log, err := newLogger(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		db, closeDB, err := toolDatabase(c.Context(), cfg, log)
		if err != nil {
			return nil, nil, nil, err
		}
		svc := report.NewService(store.NewReportStore(db), report.Options{Plan: plan})
		if !needSite {
			return svc, nil, closeDB, nil
		}
		site, err := svc.Site(c.Context(), 0, strings.TrimSpace(siteCode))
		if errors.Is(err, report.ErrSiteNotFound) {
			closeDB()
			return nil, nil, nil, fmt.Errorf("no site %q", siteCode)
		}
		if err != nil {
			closeDB()
			return nil, nil, nil, err
		}
		return svc, site, closeDB, nil
	}
	siteFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&siteCode, "site", "", "site code (required)")
	}
	outFlags := func(c *cobra.Command, o *reportOutput) {
		c.Flags().BoolVar(&o.json, "json", false, "print JSON (the API's format)")
		c.Flags().BoolVar(&o.csv, "csv", false, "print CSV")
	}
	var from, to, env string
	periodFlags := func(c *cobra.Command, envHelp string) {
		c.Flags().StringVar(&from, "from", "", "start of the period: YYYY-MM-DD or RFC 3339 (required)")
		c.Flags().StringVar(&to, "to", "", "end of the period: YYYY-MM-DD (included) or RFC 3339 (excluded) (required)")
		c.Flags().StringVar(&env, "env", "", envHelp)
	}
	period := func(site *report.Site, defEnv string) (report.Period, error) {
		f, t, err := report.ParseBounds(from, to)
		if err != nil {
			return report.Period{}, cliPeriodError(err)
		}
		e, err := report.ParseEnv(env, defEnv)
		if err != nil {
			return report.Period{}, cliPeriodError(err)
		}
		return report.Period{SiteID: site.ID, Env: e, From: f, To: t}, nil
	}

	var certOut reportOutput
	cert := &cobra.Command{
		Use:   "certification --site S",
		Short: "The site's certification status against the test plan",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, site, closeDB, err := open(c, true)
			if err != nil {
				return err
			}
			defer closeDB()
			res, err := svc.Certification(c.Context(), site)
			if err != nil {
				return err
			}
			return certOut.write(c.OutOrStdout(), res)
		},
	}
	siteFlag(cert)
	outFlags(cert, &certOut)

	var item, note, by string
	var revoke bool
	signOff := &cobra.Command{
		Use:   "sign-off --site S --item ITEM --by NAME [--note TEXT] [--revoke]",
		Short: "Sign off a readiness item of the site (recorded with who and when, and audited)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.TrimSpace(by) == "" {
				return errors.New("--by is required: the name of the registry staff member signing off")
			}
			svc, site, closeDB, err := open(c, true)
			if err != nil {
				return err
			}
			defer closeDB()
			actor := admin.SystemActor("report sign-off")
			so, err := svc.SignOff(c.Context(), actor, site, strings.TrimSpace(item), note, revoke, strings.TrimSpace(by))
			if err != nil {
				return cliAdminError(err)
			}
			verb := "signed off"
			if so.Revoked {
				verb = "revoked the sign-off of"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s %s %q for site %s at %s\n", so.By, verb, so.Item, site.Code, so.At.Format("2006-01-02T15:04:05Z07:00"))
			return nil
		},
	}
	siteFlag(signOff)
	signOff.Flags().StringVar(&item, "item", "", "readiness item id of the test plan (required)")
	signOff.Flags().StringVar(&by, "by", "", "who signs off (required)")
	signOff.Flags().StringVar(&note, "note", "", "a note kept with the sign-off")
	signOff.Flags().BoolVar(&revoke, "revoke", false, "withdraw the sign-off instead")

	var qOut reportOutput
	quality := &cobra.Command{
		Use:   "quality --site S --from DATE --to DATE [--env T|P] [--csv|--json]",
		Short: "Data-quality report of the site for a period and environment",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			svc, site, closeDB, err := open(c, true)
			if err != nil {
				return err
			}
			defer closeDB()
			p, err := period(site, report.DefaultEnv(site))
			if err != nil {
				return err
			}
			q, err := svc.Quality(c.Context(), site, p)
			if err != nil {
				return cliPeriodError(err)
			}
			return qOut.write(c.OutOrStdout(), q)
		},
	}
	siteFlag(quality)
	periodFlags(quality, "environment: P (production) or T (test); default: the site's current one")
	outFlags(quality, &qOut)

	var rOut reportOutput
	var count int64
	reconcile := &cobra.Command{
		Use:   "reconcile --site S --from DATE --to DATE [--env P|T] (FILE | --count N) [--csv|--json]",
		Short: "Reconcile the site's count or file of MSH-10 control IDs with what was received",
		Long: `Reconcile compares what the site says it sent in the period with the messages received from it:
FILE lists the MSH-10 control IDs of its messages, one per line ("-" is standard input; blank
lines, '#' comments and a header line are skipped; junk lines are reported with their line number
and skipped), or --count N gives only their number. The environment is production unless --env T.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			countSet := c.Flags().Changed("count")
			switch {
			case countSet && len(args) == 1:
				return errors.New("give a FILE of control IDs or --count, not both")
			case !countSet && len(args) == 0:
				return errors.New("give a FILE of control IDs (or - for standard input), or --count N")
			case countSet && count < 0:
				return errors.New("--count must not be negative")
			}
			var claim *report.Claim
			if countSet {
				claim = &report.Claim{Count: count}
			} else {
				var in io.Reader = c.InOrStdin()
				if args[0] != "-" {
					f, err := os.Open(args[0])
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				}
				var err error
				if claim, err = report.ParseControlIDs(in); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			svc, site, closeDB, err := open(c, true)
			if err != nil {
				return err
			}
			defer closeDB()
			p, err := period(site, "P")
			if err != nil {
				return err
			}
			r, err := svc.Reconcile(c.Context(), site, p, claim)
			if err != nil {
				return cliPeriodError(err)
			}
			return rOut.write(c.OutOrStdout(), r)
		},
	}
	siteFlag(reconcile)
	periodFlags(reconcile, "environment: P (production, the default) or T (test)")
	reconcile.Flags().Int64Var(&count, "count", 0, "the number of messages the site says it sent (instead of FILE)")
	outFlags(reconcile, &rOut)

	plan := &cobra.Command{
		Use:   "plan [--plan FILE]",
		Short: "Print the test plan in use: the default one, or check and summarize --plan FILE",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			if planFile == "" {
				planFile = cfg.Report.Plan
			}
			if planFile == "" {
				_, err := c.OutOrStdout().Write(report.DefaultPlanYAML())
				return err
			}
			p, err := loadPlan(planFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: plan %q, %d cases, %d readiness items\n", planFile, p.Name, len(p.Cases), len(p.Readiness))
			for _, cs := range p.Cases {
				fmt.Fprintf(c.OutOrStdout(), "  case %s: %s (expects %s)\n", cs.ID, cs.Title, strings.Join(cs.ExpectACK, " or "))
			}
			for _, it := range p.Readiness {
				fmt.Fprintf(c.OutOrStdout(), "  readiness %s: %s\n", it.ID, it.Title)
			}
			return nil
		},
	}

	cmd.AddCommand(cert, signOff, quality, reconcile, plan)
	return cmd
}

// cliPeriodError drops the package prefix of a bad period for a one-line CLI answer.
func cliPeriodError(err error) error {
	if errors.Is(err, report.ErrBadPeriod) {
		return errors.New(strings.TrimPrefix(err.Error(), report.ErrBadPeriod.Error()+": "))
	}
	return err
}

// cliAdminError shows an admin error's message only.
func cliAdminError(err error) error {
	var e *admin.Error
	if errors.As(err, &e) && e.Kind != admin.KindInternal {
		return errors.New(e.Message)
	}
	return err
}

// summaryLookback is how far back serve's periodic summaries look for messages without one (the
// first run after serve starts) and for closed days to roll up (every run).
const summaryLookback = 48 * time.Hour

// startReportSummaries runs the periodic report summaries of serve (report.summarize_interval),
// with one worker, in jobs (serve waits for them before the database closes): intake writes every
// message's report facts (columns of its archive row), so after a first run that catches up the
// lookback, a run rolls up the days that closed and otherwise costs a few look-ups (see README,
// "Report facts, written at intake").
func startReportSummaries(ctx context.Context, jobs *sync.WaitGroup, c *config, db *store.DB, log *zap.Logger) {
	if c.Report.SummarizeInterval <= 0 {
		return
	}
	svc := report.NewService(store.NewReportStore(db), report.Options{Workers: 1})
	jobs.Go(func() { svc.RunSummaries(ctx, c.Report.SummarizeInterval, summaryLookback, log) })
}
