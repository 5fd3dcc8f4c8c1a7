// Package admin is the registry's admin module: organizations and their sites (health systems
// with child organizations), site onboarding (registered → testing → production) and sender
// credentials, users and their roles and MIIS designations, authentication (sessions), account
// rules (password policy, forced change after reset, lockout, expiry after 90 days unused),
// data-sharing changes and patient lookup that honours the sharing status, and the audit log.
//
// The package holds the domain types and every rule, in Service. It reaches the database only
// through the Store interface, which package store implements; it never imports store. The JSON
// API (NewHandler, under /api/v1) and the command line (package admin/cli) are thin layers over
// Service.
//
// # Authorization
//
// One decision point, Decide (authz.go), answers every question "may this actor do this action to
// this target" with a Decision naming the rule; every Service method that acts for an Actor asks
// it first, and Service.Can is its query form for pages. docs/permissions.md is generated from
// the code (go generate ./admin) and lists the roles (MIIC), the designations (MIIS), how they
// combine, the rules, and the action × role/designation × scope table. In short: a role applies
// at its site (a Health System User's at every site of the health system); user management comes
// from an administrator role or the Access Administrator designation; a user's account is changed
// only by registry staff or by an administrator of every site the user belongs to; adding an
// existing user to a site is an invitation they accept; registry staff (and the command line,
// audited as cli:<os-user>) may do everything else.
//
// Every site in testing or production keeps at least one active Access Administrator: changes
// that would take the last one away are refused, a site cannot move to testing or production
// without one, and expiry flags the site "needs AA" and tells registry staff (service_aa.go). The
// store checks the last-AA rule in the transaction that makes the change, with the site row
// locked, so that two concurrent changes cannot both pass.
//
// # Data sharing
//
// A registry patient's sharing status is Y (default), N (the patient objected) or U (unknown,
// e.g. historical backload). Records of an N patient are visible only to the organizations that
// reported them (and only their own records); a U patient's records are not shown to anyone until
// an authorized user resolves the status to Y or N.
package admin
