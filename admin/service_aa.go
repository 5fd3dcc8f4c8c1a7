package admin

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// Every site in testing or production keeps at least one active Access Administrator. Changes
// that would take the last one away are refused (the store checks it with the site row locked);
// a site cannot move to testing or production without one (SetSiteStatus); and what cannot be
// refused (an account expiring after 90 days unused, a site created by an operator tool directly
// in testing or production) flags the site "needs AA": the flag is on the site (Site.NeedsAA,
// visible in the API and the portal) from the moment it is found until an AA is active again,
// and registry staff are e-mailed when it is raised.

// refreshAA re-checks the sites (nil: every site) inside the transaction tx: it raises the flag of
// those in testing or production without an active AA, clears it where one is active again, and
// audits each new flag. It returns the newly flagged sites, for tellNeedsAA after the commit.
func (s *Service) refreshAA(ctx context.Context, tx Store, siteIDs []int64) ([]Site, error) {
	if siteIDs != nil && len(siteIDs) == 0 {
		return nil, nil
	}
	flagged, cleared, err := tx.RefreshSitesAA(ctx, siteIDs, s.now())
	if err != nil {
		return nil, fmt.Errorf("admin: check access administrators: %w", err)
	}
	sys := SystemActor("aa-check")
	for _, site := range flagged {
		if err := s.audit(ctx, tx, sys, "", "site.needs_aa", "site", site.ID, []int64{site.ID},
			map[string]bool{"needs_access_administrator": false}, map[string]any{"needs_access_administrator": true, "status": site.Status}); err != nil {
			return nil, err
		}
	}
	for _, id := range cleared {
		if err := s.audit(ctx, tx, sys, "", "site.has_aa", "site", id, []int64{id},
			map[string]bool{"needs_access_administrator": true}, map[string]bool{"needs_access_administrator": false}); err != nil {
			return nil, err
		}
	}
	return flagged, nil
}

// tellNeedsAA e-mails registry staff about newly flagged sites (site codes and names only).
// Without a mail server, or when sending fails, it logs that the mail could not be sent; the
// flag stays on the site either way.
func (s *Service) tellNeedsAA(ctx context.Context, flagged []Site) {
	if len(flagged) == 0 {
		return
	}
	codes := make([]string, len(flagged))
	for i, f := range flagged {
		codes[i] = f.Code
	}
	if !s.o.SMTP.Configured() {
		s.log.Warn("sites need an access administrator; registry staff could not be e-mailed (no mail server configured)",
			zap.Strings("sites", codes))
		return
	}
	to, err := s.st.RegistryStaffEmails(ctx)
	if err != nil || len(to) == 0 {
		s.log.Warn("sites need an access administrator; registry staff could not be e-mailed (no active registry staff address)",
			zap.Strings("sites", codes), zap.Error(err))
		return
	}
	var b strings.Builder
	b.WriteString("These sites have no active Access Administrator:\n\n")
	for _, f := range flagged {
		fmt.Fprintf(&b, "  %s  %s (organization %s, %s)\n", f.Code, f.Name, f.OrganizationCode, f.Status)
	}
	b.WriteString("\nEvery site in testing or production needs one. Invite one for a new site; otherwise make a user of the site Access Administrator, or reactivate theirs.\n")
	for _, addr := range to {
		err := sendMail(ctx, s.o.SMTP, mailMessage{To: addr, Subject: "Sites without an Access Administrator", Body: b.String()}, s.now())
		if err != nil {
			s.log.Warn("sites need an access administrator; e-mail to registry staff failed", zap.Strings("sites", codes), zap.Error(err))
		}
	}
}
