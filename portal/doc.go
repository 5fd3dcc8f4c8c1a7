// Package portal is the registry's web portal, served by `vaxgate serve` at "/": the pages
// Access Administrators, registry users and registry staff use. Sign in and out (with the
// account rules' messages and the forced password change after a reset), the Access
// Administrator dashboard (search before inviting, the invitation form with its five
// designation questions and Copy Row), Manage users, the invitee's registration (site, PIN,
// versioned user agreement), patients and their data-sharing status, organizations and sites
// with their onboarding and sender credentials, the audit log, and each site's intake and
// reports: its certification status with the readiness sign-offs, its data quality and the
// reconciliation of its message counts (over report.Service, the same as the report API).
//
// The pages are plain server-rendered HTML (html/template, embedded) with one stylesheet: no
// script at all, so every form works without JavaScript. Every answer carries a strict
// Content-Security-Policy (nothing inline, nothing from elsewhere). The session is the admin
// module's session token in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); every
// form carries a CSRF token bound to the session.
//
// The portal holds no rule of its own: every page and action calls admin.Service with the
// signed-in actor, and renders what it answers (a refusal as a 403 or 404 page, bad input next
// to the field). Which links, buttons and forms are offered is asked of the same decision point
// (admin.Decide, Service.Can; visibility.go) that the action then asks again; the report pages
// ask it for admin.ActionViewSiteReports and admin.ActionSignOffCertification. An existing user
// is added to a site by a site invitation they accept or decline on their Invitations page.
package portal
