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
// A user is a member of one or more sites, with one role per site and any of the MIIS
// designations there. What a role may do at its site:
//
//	role                                   patients  sharing  view users/audit  manage users
//	Read Only                              yes       -        -                 -
//	Typical User (with Ordering)           yes       yes      -                 -
//	Read Only Administrator                yes       -        yes               -
//	Administrator (with Ordering)          yes       yes      yes               yes
//	Health System User (with Ordering)     yes       yes      yes               yes, in the whole health system
//
// A Health System User's rights extend to every site of the health system: the parent
// organization and all its child organizations. Registry administrators (registry staff) may do
// everything, including managing organizations, sites and sender credentials; the first one is
// created from the command line (BootstrapRegistryAdmin). The command line acts as the system
// actor: whoever can run it can reach the database anyway.
//
// The Access Administrator (AA) designation marks the accountable administrators of a site; it
// may only be held with an Administrator or Health System User role. Once a site has an active
// AA it keeps one: deactivating, demoting or removing the last active AA of a site is refused.
// The store enforces this in the transaction that makes the change, with the site row locked, so
// that two concurrent changes cannot both pass the check.
//
// # Data sharing
//
// A registry patient's sharing status is Y (default), N (the patient objected) or U (unknown,
// e.g. historical backload). Records of an N patient are visible only to the organizations that
// reported them (and only their own records); a U patient's records are not shown to anyone until
// an authorized user resolves the status to Y or N.
package admin
