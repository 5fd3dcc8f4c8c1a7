package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/store"
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
	return database(cmd.Context(), c, log)
}
