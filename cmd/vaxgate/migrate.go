package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/pgembed"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema (also done at every start of serve)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, closeDB, err := openDatabase(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			cur, latest, err := db.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema at version %d of %d\n", cur, latest)
			return nil
		},
	}
	addCommonFlags(cmd.Flags())
	return cmd
}

// openDatabase is what commands that only need the database share: configuration, logger, the
// database (private or configured) with the schema applied.
func openDatabase(cmd *cobra.Command) (*store.DB, func(), error) {
	c, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	log, err := newLogger(c)
	if err != nil {
		return nil, nil, err
	}
	return toolDatabase(cmd.Context(), c, log)
}

// toolDatabase is the database of a command run beside the engine (admin, migrate, codes,
// reports): with no database_url, the private PostgreSQL that a running `vaxgate serve` started on
// the same data dir, found through its postmaster.pid; when none runs, one started for the command.
func toolDatabase(ctx context.Context, c *config, log *zap.Logger) (*store.DB, func(), error) {
	if c.DatabaseURL == "" {
		if url, err := pgembed.Attach(ctx, c.DataDir, ""); err == nil {
			log.Debug("using the private PostgreSQL of the running server", zap.String("data_dir", c.DataDir))
			attached := *c
			attached.DatabaseURL = url
			return database(ctx, &attached, log)
		}
	}
	return database(ctx, c, log)
}
