package portal

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/vaxgate/vaxgate/admin"
)

// question is one of the five MIIS designation questions of the invitation form.
type question struct {
	Designation admin.Designation
	Question    string
	Help        string
}

var questions = []question{
	{admin.DesignationAccessAdministrator, "Is this person an Access Administrator (AA)?",
		"AAs manage the site's user accounts: they invite users, change roles, deactivate and unlock accounts and reset passwords. Every site needs at least one active AA. Any role may be an AA: the designation adds user management at this site, and the role still decides what the person may do with patient records."},
	{admin.DesignationSupervisingPhysician, "Is this person the Supervising Physician, Site Manager or Designee?",
		"The person accountable for the site's immunization practice and for its agreement with the registry."},
	{admin.DesignationTechnicalContact, "Is this person a Technical Contact?",
		"Receives the registry's messages about the site's electronic interface: onboarding, connection problems and data quality reports."},
	{admin.DesignationClinicalChampion, "Is this person a Clinical Champion?",
		"Promotes the use of the registry among the site's clinicians and receives clinical updates."},
	{admin.DesignationIncentiveContact, "Is this person the Incentive Program Contact?",
		"Receives communications about incentive programs that require reporting to the registry."},
}

// roleOption is an entry of a role <select>.
type roleOption struct {
	Value, Label string
}

func roleOptions() []roleOption {
	out := make([]roleOption, 0, len(admin.Roles))
	for _, r := range admin.Roles {
		out = append(out, roleOption{string(r), r.Label()})
	}
	return out
}

// siteOption is an entry of an organization/site picker.
type siteOption struct {
	ID       int64
	Label    string
	Selected bool
}

// siteChoice lists the sites the actor may see where the decision point allows act, labelled
// with their organization, and picks the one asked for (or the first).
func (p *Portal) siteChoice(ctx context.Context, s *session, act admin.Action, want int64) ([]siteOption, *admin.Site, error) {
	sites, err := p.svc.ListSites(ctx, *s.actor, admin.SiteFilter{})
	if err != nil {
		return nil, nil, err
	}
	orgs, err := p.svc.ListOrganizations(ctx, *s.actor)
	if err != nil {
		return nil, nil, err
	}
	names := map[int64]string{}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	var opts []siteOption
	var chosen *admin.Site
	for i := range sites {
		st := &sites[i]
		if !mayAt(s.actor, act, st) {
			continue
		}
		if (chosen == nil && want == 0) || st.ID == want {
			chosen = st
		}
		opts = append(opts, siteOption{ID: st.ID, Label: names[st.OrganizationID] + " — " + st.Name + " (PIN " + st.Code + ")"})
	}
	if want != 0 && chosen == nil {
		// Not one of the actor's: ask the Service, which answers why.
		site, err := p.svc.Site(ctx, *s.actor, want)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, admin.Decide(*s.actor, act, admin.Target{Site: site}).Err()
	}
	for i := range opts {
		opts[i].Selected = chosen != nil && opts[i].ID == chosen.ID
	}
	return opts, chosen, nil
}

// userRow is a user as the lists show them at one site.
type userRow struct {
	admin.User
	Member *admin.Membership
	AA     bool
	Reset  bool // the decision point lets the actor reset this user's password
}

func rowsAt(users []admin.User, siteID int64) []userRow {
	out := make([]userRow, 0, len(users))
	for _, u := range users {
		r := userRow{User: u}
		if siteID != 0 {
			r.Member = u.Membership(siteID)
			r.AA = r.Member != nil && r.Member.AccessAdministrator()
		} else {
			for i := range u.Memberships {
				if u.Memberships[i].AccessAdministrator() {
					r.AA = true
				}
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b userRow) int {
		if c := strings.Compare(strings.ToLower(a.LastName), strings.ToLower(b.LastName)); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.FirstName), strings.ToLower(b.FirstName))
	})
	return out
}

const searchPageSize = 10

type dashboardData struct {
	Sites     []siteOption
	Site      *admin.Site
	Users     []userRow
	First     string
	Last      string
	Email     string
	Searched  bool
	Results   []admin.UserMatch
	Total     int
	Page      int
	Pages     int
	PrevURL   string
	NextURL   string
	InviteURL string
	Roles     []roleOption
	// SiteInvitations are the site's pending invitations of existing users; Pending holds their
	// user ids (the search shows them as pending rather than offering a second invitation).
	SiteInvitations []admin.SiteInvitation
	Pending         map[int64]bool
}

// dashboard is the Access Administrator's page: the site's active users and invitations, and
// the search that comes before an invitation.
func (p *Portal) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	opts, site, err := p.siteChoice(r.Context(), s, admin.ActionInviteUser, formID(r, "site"))
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	if site == nil {
		p.errorPage(w, r, s, http.StatusForbidden, "Managing users requires the Administrator or Health System User role at a site, or the Access Administrator designation.")
		return
	}
	d := dashboardData{Sites: opts, Site: site, Roles: roleOptions(),
		First: strings.TrimSpace(q.Get("first")), Last: strings.TrimSpace(q.Get("last")), Email: strings.TrimSpace(q.Get("email"))}
	users, err := p.svc.ListUsers(r.Context(), *s.actor, site.ID, "")
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	var shown []admin.User
	for _, u := range users {
		if u.Status == admin.UserActive || u.Status == admin.UserInvited {
			shown = append(shown, u)
		}
	}
	d.Users = rowsAt(shown, site.ID)
	if d.SiteInvitations, err = p.svc.SiteInvitations(r.Context(), *s.actor, site.ID); err != nil {
		p.fail(w, r, s, err)
		return
	}
	d.Pending = map[int64]bool{}
	for _, inv := range d.SiteInvitations {
		d.Pending[inv.UserID] = true
	}
	v := view{Data: &d, Fields: map[string]string{}}
	if q.Has("search") {
		d.Searched = true
		matches, err := p.svc.SearchUsers(r.Context(), *s.actor, admin.UserQuery{FirstName: d.First, LastName: d.Last, Email: d.Email, Limit: 100})
		if err != nil {
			status, msg := p.formError(r, err)
			if status >= 500 || status == http.StatusForbidden {
				p.fail(w, r, s, err)
				return
			}
			d.Searched = false
			v.Fields["search"] = msg
		} else {
			d.Total = len(matches)
			d.Pages = (len(matches) + searchPageSize - 1) / searchPageSize
			d.Page = int(formID(r, "page"))
			if d.Page < 1 {
				d.Page = 1
			}
			if d.Page > d.Pages && d.Pages > 0 {
				d.Page = d.Pages
			}
			lo := (d.Page - 1) * searchPageSize
			hi := min(lo+searchPageSize, len(matches))
			if lo < hi {
				d.Results = matches[lo:hi]
			}
			pageURL := func(n int) string {
				qq := url.Values{"site": {strconv.FormatInt(site.ID, 10)}, "first": {d.First}, "last": {d.Last},
					"email": {d.Email}, "search": {"1"}, "page": {strconv.Itoa(n)}}
				return "/dashboard?" + qq.Encode() + "#results"
			}
			if d.Page > 1 {
				d.PrevURL = pageURL(d.Page - 1)
			}
			if d.Page < d.Pages {
				d.NextURL = pageURL(d.Page + 1)
			}
		}
		iq := url.Values{"site": {strconv.FormatInt(site.ID, 10)}, "first": {d.First}, "last": {d.Last}, "email": {d.Email}}
		d.InviteURL = "/invite?" + iq.Encode()
	}
	p.render(w, r, s, http.StatusOK, "dashboard", "Access Administrator dashboard", v)
}

// inviteRow is one person of the invitation form.
type inviteRow struct {
	Index        int
	First        string
	Last         string
	Email        string
	Username     string
	Phone        string
	Role         string
	Answers      map[admin.Designation]string // "yes" or "no"
	NotDuplicate bool
	AskDuplicate bool
	Error        string
	Fields       map[string]string
}

type inviteData struct {
	Site      *admin.Site
	Rows      []inviteRow
	Questions []question
	Roles     []roleOption
	Sent      []*admin.Invitation
}

const maxInviteRows = 20

func (p *Portal) invitePage(w http.ResponseWriter, r *http.Request, s *session) {
	site, err := p.manageableSite(r, s)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	row := inviteRow{First: q.Get("first"), Last: q.Get("last"), Email: q.Get("email"),
		Role: string(admin.RoleTypicalUser), Answers: map[admin.Designation]string{}}
	p.renderInvite(w, r, s, http.StatusOK, site, []inviteRow{row}, nil, "")
}

// manageableSite is the site of the invitation form: one the Service lets the actor see, and
// where the decision point lets them invite users (else the form is not offered at all).
func (p *Portal) manageableSite(r *http.Request, s *session) (*admin.Site, error) {
	id := formID(r, "site")
	if id == 0 {
		return nil, admin.Invalid("choose a site first (from the dashboard)")
	}
	site, err := p.svc.Site(r.Context(), *s.actor, id)
	if err != nil {
		return nil, err
	}
	if err := admin.Decide(*s.actor, admin.ActionInviteUser, admin.Target{Site: site}).Err(); err != nil {
		return nil, err
	}
	return site, nil
}

func (p *Portal) renderInvite(w http.ResponseWriter, r *http.Request, s *session, status int, site *admin.Site, rows []inviteRow, sent []*admin.Invitation, msg string) {
	for i := range rows {
		rows[i].Index = i
	}
	p.render(w, r, s, status, "invite", "Invite users", view{Error: msg,
		Data: inviteData{Site: site, Rows: rows, Questions: questions, Roles: roleOptions(), Sent: sent}})
}

func parseInviteRows(f url.Values) []inviteRow {
	n, _ := strconv.Atoi(f.Get("rows"))
	n = max(1, min(n, maxInviteRows))
	rows := make([]inviteRow, n)
	for i := range rows {
		k := strconv.Itoa(i)
		row := inviteRow{First: f.Get("first_" + k), Last: f.Get("last_" + k), Email: f.Get("email_" + k),
			Username: f.Get("username_" + k), Phone: f.Get("phone_" + k), Role: f.Get("role_" + k),
			NotDuplicate: f.Get("not_duplicate_"+k) == "yes", Answers: map[admin.Designation]string{}}
		for _, q := range questions {
			if a := f.Get(string(q.Designation) + "_" + k); a == "yes" || a == "no" {
				row.Answers[q.Designation] = a
			}
		}
		rows[i] = row
	}
	return rows
}

// invite handles the invitation form: Copy Row, Add row and Remove row re-render it (so that
// they work without JavaScript); Send invites every row through the Service and keeps the rows
// it refused, with its reasons next to their fields.
func (p *Portal) invite(w http.ResponseWriter, r *http.Request, s *session) {
	site, err := p.manageableSite(r, s)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	f := r.PostForm
	rows := parseInviteRows(f)
	at := func(name string) int {
		i, err := strconv.Atoi(f.Get(name))
		if err != nil || i < 0 || i >= len(rows) {
			return -1
		}
		return i
	}
	switch {
	case f.Has("copy"):
		if i := at("copy"); i >= 0 && len(rows) < maxInviteRows {
			c := inviteRow{Role: rows[i].Role, Answers: map[admin.Designation]string{}}
			for k, v := range rows[i].Answers {
				c.Answers[k] = v
			}
			rows = slices.Insert(rows, i+1, c)
		}
		p.renderInvite(w, r, s, http.StatusOK, site, rows, nil, "")
		return
	case f.Has("remove"):
		if i := at("remove"); i >= 0 && len(rows) > 1 {
			rows = slices.Delete(rows, i, i+1)
		}
		p.renderInvite(w, r, s, http.StatusOK, site, rows, nil, "")
		return
	case f.Has("add"):
		if len(rows) < maxInviteRows {
			rows = append(rows, inviteRow{Role: string(admin.RoleTypicalUser), Answers: map[admin.Designation]string{}})
		}
		p.renderInvite(w, r, s, http.StatusOK, site, rows, nil, "")
		return
	}
	var sent []*admin.Invitation
	var failed []inviteRow
	status := http.StatusOK
	for _, row := range rows {
		in := admin.InviteInput{
			NewUserInput: admin.NewUserInput{Username: row.Username, FirstName: row.First, LastName: row.Last, Email: row.Email, Phone: row.Phone},
			SiteID:       site.ID, Role: admin.Role(row.Role), NotDuplicate: row.NotDuplicate,
		}
		missing := false
		for _, q := range questions {
			switch row.Answers[q.Designation] {
			case "yes":
				in.Designations = append(in.Designations, q.Designation)
			case "":
				missing = true
			}
		}
		if missing {
			row.Fields = map[string]string{"designations": "Answer each of the five questions."}
			failed = append(failed, row)
			status = http.StatusBadRequest
			continue
		}
		inv, err := p.svc.Invite(r.Context(), *s.actor, in)
		if err != nil {
			st, msg := p.formError(r, err)
			status = max(status, st)
			row.Fields = map[string]string{}
			field := fieldOf(err)
			if field == "" {
				row.Error = msg
			} else {
				row.Fields[field] = msg
			}
			row.AskDuplicate = admin.AsError(err).Code == admin.ErrPossibleDuplicate.Code
			failed = append(failed, row)
			continue
		}
		sent = append(sent, inv)
	}
	if len(failed) == 0 {
		p.render(w, r, s, http.StatusOK, "invited", "Invitations sent", view{Data: inviteData{Site: site, Sent: sent, Questions: questions}})
		return
	}
	msg := "Some invitations could not be sent: correct the rows below and send them again."
	if len(sent) == 0 {
		msg = "No invitation was sent: correct the rows below."
	}
	p.renderInvite(w, r, s, status, site, failed, sent, msg)
}

// fieldOf names the form field a Service error is about, from its code or the field its message
// starts with ("" when it is about the whole row).
func fieldOf(err error) string {
	e := admin.AsError(err)
	switch e.Code {
	case admin.ErrInvalidUsername.Code, admin.ErrUsernameTaken.Code:
		return "username"
	case admin.ErrDuplicateUser.Code:
		return "email"
	case admin.ErrPossibleDuplicate.Code:
		return "last"
	case admin.ErrWeakPassword.Code:
		return "password"
	}
	m := strings.ToLower(e.Message)
	for _, p := range []struct{ prefix, field string }{
		{"first name", "first"}, {"last name", "last"}, {"email", "email"}, {"phone", "phone"},
		{"role", "role"}, {"designation", "designations"}, {"the access administrator designation", "designations"},
		{"username", "username"},
	} {
		if strings.HasPrefix(m, p.prefix) {
			return p.field
		}
	}
	return ""
}

type manageData struct {
	Sites   []siteOption
	Site    *admin.Site
	Show    string
	Users   []userRow
	Manage  bool
	Rules   []string
	AllSite bool
}

// manageUsers is the account list (MIIC "Manage Users").
func (p *Portal) manageUsers(w http.ResponseWriter, r *http.Request, s *session) {
	show := r.URL.Query().Get("show")
	if show != "inactive" && show != "all" {
		show = "active"
	}
	want := formID(r, "site")
	opts, site, err := p.siteChoice(r.Context(), s, admin.ActionListUsers, want)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	if want == 0 && registryStaff(s.actor) {
		site = nil // registry staff start with every user
		for i := range opts {
			opts[i].Selected = false
		}
	} else if site == nil {
		p.errorPage(w, r, s, http.StatusForbidden, "Viewing users requires an administrator role at a site.")
		return
	}
	var siteID int64
	if site != nil {
		siteID = site.ID
	}
	users, err := p.svc.ListUsers(r.Context(), *s.actor, siteID, "")
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	var shown []admin.User
	for _, u := range users {
		active := u.Status == admin.UserActive || u.Status == admin.UserInvited
		if show == "all" || (show == "active") == active {
			shown = append(shown, u)
		}
	}
	d := manageData{Sites: opts, Site: site, Show: show, Users: rowsAt(shown, siteID), Rules: passwordRules, AllSite: registryStaff(s.actor)}
	for i := range d.Users {
		d.Users[i].Reset = may(s.actor, admin.ActionResetPassword, admin.Target{User: &d.Users[i].User})
		d.Manage = d.Manage || d.Users[i].Reset
	}
	p.render(w, r, s, http.StatusOK, "users", "Manage users", view{Data: d})
}

type userData struct {
	User        *admin.User
	Site        *admin.Site // the site whose membership the form edits
	Member      *admin.Membership
	Sites       []siteOption
	Roles       []roleOption
	Questions   []question
	Rules       []string
	Can         userControls // what the decision point lets the actor do to this user
	Invite      bool         // not a member of Site: the actor may invite them to it
	Self        bool
	Password    string // a generated temporary password, shown once
	PasswordSet bool
}

func (p *Portal) userPage(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	p.showUser(w, r, s, id, formID(r, "site"), http.StatusOK, view{})
}

// showUser renders the edit page of user id, editing the membership at siteID (or the first
// site of the user the actor manages).
func (p *Portal) showUser(w http.ResponseWriter, r *http.Request, s *session, id, siteID int64, status int, v view) {
	u, err := p.svc.User(r.Context(), *s.actor, id)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	opts, site, err := p.siteChoice(r.Context(), s, admin.ActionInviteUser, 0)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	site = nil
	for i := range opts {
		if (siteID != 0 && opts[i].ID == siteID) || (siteID == 0 && site == nil && u.Membership(opts[i].ID) != nil) {
			if st, err := p.svc.Site(r.Context(), *s.actor, opts[i].ID); err == nil {
				site = st
			}
		}
	}
	if site == nil && len(opts) > 0 && siteID == 0 {
		if st, err := p.svc.Site(r.Context(), *s.actor, opts[0].ID); err == nil {
			site = st
		}
	}
	for i := range opts {
		opts[i].Selected = site != nil && opts[i].ID == site.ID
	}
	d, _ := v.Data.(*userData)
	if d == nil {
		d = &userData{}
	}
	d.User, d.Site, d.Sites, d.Roles, d.Questions, d.Rules = u, site, opts, roleOptions(), questions, passwordRules
	d.Self = s.actor.UserID == u.ID
	d.Can = controlsFor(s.actor, u, site)
	if site != nil {
		d.Member = u.Membership(site.ID)
		d.Invite = d.Member == nil && may(s.actor, admin.ActionInviteToSite, admin.Target{User: u, Site: site})
	}
	v.Data = d
	p.render(w, r, s, status, "user", u.FirstName+" "+u.LastName, v)
}

// userFormFailed re-renders the user page with a Service error next to the form's field.
func (p *Portal) userFormFailed(w http.ResponseWriter, r *http.Request, s *session, id int64, err error, defaultField string) {
	status, msg := p.formError(r, err)
	if status == http.StatusForbidden || status == http.StatusNotFound || status >= 500 {
		p.fail(w, r, s, err)
		return
	}
	field := fieldOf(err)
	if field == "" {
		field = defaultField
	}
	p.showUser(w, r, s, id, formID(r, "site"), status, view{Fields: map[string]string{field: msg}, Error: "The change was not saved: see below."})
}

func (p *Portal) userProfile(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	str := func(k string) *string { v := f.Get(k); return &v }
	in := admin.ProfileInput{FirstName: str("first"), LastName: str("last"), Email: str("email"), Phone: str("phone")}
	if _, err := p.svc.UpdateUser(r.Context(), *s.actor, id, in); err != nil {
		p.userFormFailed(w, r, s, id, err, "profile")
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), "profile", url.Values{"site": {f.Get("site")}})
}

// userRemoveMembership takes the user out of one site (the admin module refuses the site's last
// active Access Administrator); the user's account and other memberships stay. The answer is the
// site's user list: the user may now be out of the actor's sight.
func (p *Portal) userRemoveMembership(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	siteID := formID(r, "site")
	if _, err := p.svc.RemoveMembership(r.Context(), *s.actor, id, siteID); err != nil {
		p.userFormFailed(w, r, s, id, err, "remove")
		return
	}
	seeOther(w, r, "/users", "removed", url.Values{"site": {strconv.FormatInt(siteID, 10)}})
}

func (p *Portal) userMembership(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	siteID := formID(r, "site")
	if _, err := p.svc.SetMembership(r.Context(), *s.actor, id, siteID, admin.Role(f.Get("role")), designationsAnswered(f)); err != nil {
		p.userFormFailed(w, r, s, id, err, "role")
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), "membership", url.Values{"site": {f.Get("site")}})
}

// userSiteInvite invites an existing user to a site (the dashboard's "Add" and the user page):
// a site invitation the user accepts or declines after signing in, never a silent membership.
func (p *Portal) userSiteInvite(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	f := r.PostForm
	siteID := formID(r, "site")
	_, err := p.svc.InviteToSite(r.Context(), *s.actor, admin.SiteInvitationInput{UserID: id, SiteID: siteID, Role: admin.Role(f.Get("role")), Designations: designationsAnswered(f)})
	if err != nil {
		if f.Get("from") == "dashboard" {
			p.fail(w, r, s, err)
			return
		}
		p.userFormFailed(w, r, s, id, err, "role")
		return
	}
	if f.Get("from") == "dashboard" {
		seeOther(w, r, "/dashboard", "siteinvited", url.Values{"site": {f.Get("site")}})
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), "siteinvited", url.Values{"site": {f.Get("site")}})
}

func (p *Portal) userStatus(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	var err error
	notice := ""
	switch r.PostForm.Get("action") {
	case "deactivate":
		_, err = p.svc.Deactivate(r.Context(), *s.actor, id)
		notice = "deactivated"
	case "reactivate":
		_, err = p.svc.Reactivate(r.Context(), *s.actor, id)
		notice = "reactivated"
	default:
		p.errorPage(w, r, s, http.StatusBadRequest, "Unknown action.")
		return
	}
	if err != nil {
		p.userFormFailed(w, r, s, id, err, "status")
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), notice, url.Values{"site": {r.PostForm.Get("site")}})
}

func (p *Portal) userUnlock(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	if _, err := p.svc.Unlock(r.Context(), *s.actor, id); err != nil {
		p.userFormFailed(w, r, s, id, err, "status")
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), "unlocked", url.Values{"site": {r.PostForm.Get("site")}})
}

// userReset sets a temporary password (the one typed, or a generated one shown once on the
// answer); the user must change it at the next sign-in.
func (p *Portal) userReset(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	_, generated, err := p.svc.ResetPassword(r.Context(), *s.actor, id, r.PostForm.Get("password"))
	if err != nil {
		p.userFormFailed(w, r, s, id, err, "password")
		return
	}
	d := &userData{Password: generated, PasswordSet: true}
	p.showUser(w, r, s, id, formID(r, "site"), http.StatusOK, view{Data: d,
		Notice: "The password was reset. The user must choose a new one at the next sign-in; their sessions were ended."})
}

// userReinvite emails a new registration link to a user who has not registered yet.
func (p *Portal) userReinvite(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	if _, err := p.svc.ResendInvite(r.Context(), *s.actor, id, false); err != nil {
		p.userFormFailed(w, r, s, id, err, "status")
		return
	}
	seeOther(w, r, "/users/"+strconv.FormatInt(id, 10), "reinvited", url.Values{"site": {r.PostForm.Get("site")}})
}

// designationsAnswered reads the designation questions of a membership form: the ones answered
// "yes". Never nil: an empty list says "no designations" (nil would keep the current ones).
func designationsAnswered(f url.Values) []admin.Designation {
	ds := []admin.Designation{}
	for _, q := range questions {
		if f.Get(string(q.Designation)) == "yes" {
			ds = append(ds, q.Designation)
		}
	}
	return ds
}
