package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

func newCodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "codes",
		Short: "CDC code sets (CVX, MVX, product names, NDC)",
	}
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Load newer CDC code-set downloads into the registry (used from the next start of serve)",
		Long: `Read CDC code-set files (cvx.txt, mvx.txt, the CDC XML downloads, the product name table, NDC
tables), recognised by their content, overlay them on the code sets in use and store the result in
the database. Running engines pick it up at their next start.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, closeDB, err := openDatabase(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			base, err := codeSet(cmd.Context(), db)
			if err != nil {
				return err
			}
			set, report, err := codes.Import(base, args...)
			if err != nil {
				return err
			}
			data, err := set.MarshalBinary()
			if err != nil {
				return err
			}
			if err := db.SaveCodeSnapshot(cmd.Context(), strings.Join(args, ","), data); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), report.String())
			fmt.Fprintln(cmd.OutOrStdout(), "stored: used by vaxgate serve from its next start")
			return nil
		},
	}
	addCommonFlags(imp.Flags())
	cmd.AddCommand(imp)
	return cmd
}
