package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
)

// orgNode is an organization with its sites and child organizations (health systems have two
// levels).
type orgNode struct {
	admin.Organization
	Sites    []siteRow
	Children []*orgNode
}

// siteRow is a site in the organization tree. Its "needs AA" flag (Site.NeedsAA, since
// NeedsAASince) is the admin module's: set while a site in testing or production has no active
// Access Administrator.
type siteRow struct {
	admin.Site
}

type registryData struct {
	Tree     []*orgNode
	Parents  []admin.Organization
	Orgs     []admin.Organization
	Statuses []admin.SiteStatus
	Staff    bool
	// OrgForm and SiteForm are what was typed into the form whose registration failed, to be
	// shown again in that form only: the other form stays empty, so a failed site is not
	// offered as an organization to register. OrgParent and SiteOrg are their selects' choices.
	OrgForm, SiteForm  url.Values
	OrgParent, SiteOrg int64
}

// tree arranges organizations and sites parent → children → sites.
func tree(orgs []admin.Organization, sites []admin.Site) []*orgNode {
	nodes := map[int64]*orgNode{}
	for _, o := range orgs {
		nodes[o.ID] = &orgNode{Organization: o}
	}
	for _, st := range sites {
		if n := nodes[st.OrganizationID]; n != nil {
			n.Sites = append(n.Sites, siteRow{Site: st})
		}
	}
	var roots []*orgNode
	for _, o := range orgs {
		n := nodes[o.ID]
		if o.ParentID != nil && nodes[*o.ParentID] != nil {
			parent := nodes[*o.ParentID]
			parent.Children = append(parent.Children, n)
			continue
		}
		roots = append(roots, n)
	}
	return roots
}

func (p *Portal) registryData(r *http.Request, s *session) (*registryData, error) {
	orgs, err := p.svc.ListOrganizations(r.Context(), *s.actor)
	if err != nil {
		return nil, err
	}
	sites, err := p.svc.ListSites(r.Context(), *s.actor, admin.SiteFilter{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(orgs, func(a, b admin.Organization) int { return strings.Compare(a.Name, b.Name) })
	d := &registryData{Tree: tree(orgs, sites), Orgs: orgs, Staff: registryStaff(s.actor),
		Statuses: []admin.SiteStatus{admin.SiteRegistered, admin.SiteTesting, admin.SiteProduction}}
	for _, o := range orgs {
		if o.ParentID == nil {
			d.Parents = append(d.Parents, o)
		}
	}
	return d, nil
}

// registry is the registry staff's page: organizations and sites, their onboarding status and
// go-live date, and the forms to register new ones.
// Others see their organizations and sites at /sites.
func (p *Portal) registry(w http.ResponseWriter, r *http.Request, s *session) {
	if err := admin.Decide(*s.actor, admin.ActionCreateOrganization, admin.Target{}).Err(); err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.showRegistry(w, r, s, http.StatusOK, view{}, "")
}

// showRegistry shows the page; form ("organization" or "site") names the form whose
// registration failed, shown again with what was typed into it.
func (p *Portal) showRegistry(w http.ResponseWriter, r *http.Request, s *session, status int, v view, form string) {
	d, err := p.registryData(r, s)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	switch form {
	case "organization":
		d.OrgForm, d.OrgParent = r.PostForm, formID(r, "parent")
	case "site":
		d.SiteForm, d.SiteOrg = r.PostForm, formID(r, "organization")
	}
	v.Data = d
	p.render(w, r, s, status, "registry", "Organizations and sites", v)
}

func (p *Portal) registryFailed(w http.ResponseWriter, r *http.Request, s *session, err error, form string) {
	st, msg := p.formError(r, err)
	if st == http.StatusForbidden || st >= 500 {
		p.fail(w, r, s, err)
		return
	}
	p.showRegistry(w, r, s, st, view{Fields: map[string]string{form: msg}, Error: "Nothing was created: see below."}, form)
}

func (p *Portal) createOrganization(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	in := admin.OrganizationInput{Code: f.Get("code"), Name: f.Get("name"), ParentID: formID(r, "parent")}
	if _, err := p.svc.CreateOrganization(r.Context(), *s.actor, in); err != nil {
		p.registryFailed(w, r, s, err, "organization")
		return
	}
	seeOther(w, r, "/registry", "organization", nil)
}

func (p *Portal) createSite(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	in := admin.SiteInput{OrganizationID: formID(r, "organization"), Code: f.Get("code"), Name: f.Get("name")}
	if fac := strings.TrimSpace(f.Get("facility")); fac != "" {
		in.Facilities = []string{fac}
	}
	if g := strings.TrimSpace(f.Get("go_live")); g != "" {
		d, err := admin.ParseDate(g)
		if err != nil {
			p.registryFailed(w, r, s, err, "site")
			return
		}
		in.GoLive = d
	}
	if _, err := p.svc.CreateSite(r.Context(), *s.actor, in); err != nil {
		p.registryFailed(w, r, s, err, "site")
		return
	}
	seeOther(w, r, "/registry", "site", nil)
}

type sitesData struct {
	Tree []*orgNode
}

// sites lists the sites the actor belongs to (every site for registry staff).
func (p *Portal) sites(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := p.registryData(r, s)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.render(w, r, s, http.StatusOK, "sites", "Sites", view{Data: sitesData{Tree: d.Tree}})
}

type siteData struct {
	Site         *admin.Site
	Org          *admin.Organization
	Credentials  []admin.SenderCredential
	CredsHidden  bool
	Staff        bool // the decision point allows changing the onboarding status
	ManageCreds  bool // … and creating or revoking sender credentials
	Statuses     []admin.SiteStatus
	NewCred      *admin.SenderCredential
	NewPassword  string
	CredUsername string
	Tabs         siteTabs
	// Cert is where the site stands on certification, shown to registry staff beside the
	// onboarding status (nil when they may not see reports or it could not be read).
	Cert *report.Certification
	// OpenItems counts its readiness items not signed off.
	OpenItems int
}

func (p *Portal) site(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	p.showSite(w, r, s, id, http.StatusOK, view{})
}

func (p *Portal) showSite(w http.ResponseWriter, r *http.Request, s *session, id int64, status int, v view) {
	st, err := p.svc.Site(r.Context(), *s.actor, id)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	d, _ := v.Data.(*siteData)
	if d == nil {
		d = &siteData{}
	}
	d.Site, d.Staff = st, may(s.actor, admin.ActionSetSiteStatus, admin.Target{})
	d.Tabs = tabsFor(s.actor, st, "site")
	d.ManageCreds = may(s.actor, admin.ActionManageCredentials, admin.Target{})
	d.Statuses = []admin.SiteStatus{admin.SiteRegistered, admin.SiteTesting, admin.SiteProduction}
	if o, err := p.svc.Organization(r.Context(), *s.actor, st.OrganizationID); err == nil {
		d.Org = o
	}
	creds, err := p.svc.ListCredentials(r.Context(), *s.actor, id)
	switch {
	case err == nil:
		d.Credentials = creds
	case admin.AsError(err).Kind == admin.KindForbidden:
		d.CredsHidden = true
	default:
		p.fail(w, r, s, err)
		return
	}
	if d.Staff && st.Status != admin.SiteRegistered && p.svc.Can(r.Context(), *s.actor, admin.ActionViewSiteReports, admin.Target{Site: st}).Allow {
		// Before moving a site on, staff see whether its certification is done.
		if rs, err := p.reports.Site(r.Context(), st.ID, ""); err == nil {
			if c, err := p.reports.Certification(r.Context(), rs); err == nil {
				d.Cert = c
				for _, it := range c.Readiness {
					if !it.Signed {
						d.OpenItems++
					}
				}
			} else {
				p.log.Warn("portal: certification for the site page", zap.String("site", st.Code), zap.Error(err))
			}
		}
	}
	v.Data = d
	p.render(w, r, s, status, "site", st.Name, v)
}

func (p *Portal) siteFailed(w http.ResponseWriter, r *http.Request, s *session, id int64, err error, field string, d *siteData) {
	st, msg := p.formError(r, err)
	if st == http.StatusForbidden || st == http.StatusNotFound || st >= 500 {
		p.fail(w, r, s, err)
		return
	}
	p.showSite(w, r, s, id, st, view{Data: d, Fields: map[string]string{field: msg}, Error: "The change was not saved: see below."})
}

func (p *Portal) siteStatus(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	var goLive admin.Date
	if g := strings.TrimSpace(f.Get("go_live")); g != "" {
		var err error
		if goLive, err = admin.ParseDate(g); err != nil {
			p.siteFailed(w, r, s, id, err, "status", nil)
			return
		}
	}
	if _, err := p.svc.SetSiteStatus(r.Context(), *s.actor, id, admin.SiteStatus(f.Get("status")), goLive); err != nil {
		p.siteFailed(w, r, s, id, err, "status", nil)
		return
	}
	seeOther(w, r, "/sites/"+strconv.FormatInt(id, 10), "status", nil)
}

// siteCredential generates a SOAP sender credential; its password is shown on this answer only.
func (p *Portal) siteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	pw, err := admin.GeneratePassword()
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	c, err := p.svc.CreateSOAPCredential(r.Context(), *s.actor, id, f.Get("username"), pw, f.Get("facility"))
	if err != nil {
		p.siteFailed(w, r, s, id, err, "credential", &siteData{CredUsername: f.Get("username")})
		return
	}
	p.showSite(w, r, s, id, http.StatusOK, view{Data: &siteData{NewCred: c, NewPassword: pw},
		Notice: "The SOAP credential was created. Copy the password now: it is shown only once."})
}

func (p *Portal) revokeCredential(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	c, err := p.svc.RevokeCredential(r.Context(), *s.actor, id)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	seeOther(w, r, "/sites/"+strconv.FormatInt(c.SiteID, 10), "revoked", nil)
}

type auditData struct {
	Entries []admin.AuditEntry
	Sites   []siteOption
	Form    url.Values
	Older   string
	Codes   map[int64]string // site id → code
}

const auditPageSize = 50

// auditPage is the audit log with its filters (action or action prefix, target, site, period).
func (p *Portal) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f := admin.AuditFilter{Action: strings.TrimSpace(q.Get("action")), TargetType: strings.TrimSpace(q.Get("target_type")),
		TargetID: strings.TrimSpace(q.Get("target_id")), BeforeID: formID(r, "before"), Limit: auditPageSize}
	v := view{Fields: map[string]string{}}
	status := http.StatusOK
	for _, k := range []string{"since", "until"} {
		if t := strings.TrimSpace(q.Get(k)); t != "" {
			d, err := admin.ParseDate(t)
			if err != nil {
				v.Fields[k] = sentence(err.Error())
				status = http.StatusBadRequest
				continue
			}
			if k == "since" {
				f.Since = d.Time()
			} else {
				f.Until = d.Time().Add(24 * time.Hour)
			}
		}
	}
	site := formID(r, "site")
	if site != 0 {
		f.SiteIDs = []int64{site}
	}
	opts, _, err := p.siteChoice(r.Context(), s, admin.ActionViewAudit, 0)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	for i := range opts {
		opts[i].Selected = opts[i].ID == site
	}
	sites, err := p.svc.ListSites(r.Context(), *s.actor, admin.SiteFilter{})
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	codes := map[int64]string{}
	for _, st := range sites {
		codes[st.ID] = st.Code
	}
	d := auditData{Sites: opts, Form: q, Codes: codes}
	if status == http.StatusOK {
		entries, err := p.svc.ListAudit(r.Context(), *s.actor, f)
		if err != nil {
			p.fail(w, r, s, err)
			return
		}
		d.Entries = entries
		if len(entries) == auditPageSize {
			qq := url.Values{}
			for k, vs := range q {
				qq[k] = vs
			}
			qq.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
			d.Older = "/audit?" + qq.Encode()
		}
	}
	v.Data = d
	p.render(w, r, s, status, "audit", "Audit log", v)
}
