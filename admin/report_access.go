package admin

// RequirePrivileged answers nil when a may act as registry staff (a registry administrator, or an
// operator tool), else a Forbidden error saying that only registry administrators may do what:
// the rule of the admin module's registry-only operations, for the registry-only operations of
// other modules (the report package's readiness sign-offs).
func (s *Service) RequirePrivileged(a Actor, what string) error { return s.requirePrivileged(a, what) }
