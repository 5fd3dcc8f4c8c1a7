package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/admintest"
)

// TestControlsFollowDecisions: the links, buttons and forms the portal shows come from the
// decision point itself, not from a rule of the portal's own: when one decision changes (here
// through the test seam), the control it governs appears or disappears with it.
func TestControlsFollowDecisions(t *testing.T) {
	w := newWorld(t)
	staff := newClient(t, w)
	staff.signIn("rstaff")
	aa := newClient(t, w)
	aa.signIn("aalvarez")
	target := w.users["tnguyen"].ID
	userPath := fmt.Sprintf("/users/%d?site=%d", target, w.acme.ID)
	resetForm := fmt.Sprintf(`action="/users/%d/reset"`, target)
	has := func(c *client, path, want string) bool {
		t.Helper()
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return strings.Contains(body, want)
	}
	if !has(aa, userPath, resetForm) || !has(aa, fmt.Sprintf("/users?site=%d", w.acme.ID), `aria-label="Reset the password of Tam Nguyen"`) {
		t.Fatal("the AA of Tam's only site is not offered the password reset")
	}
	if !has(staff, "/sites", `href="/registry"`) {
		t.Fatal("registry staff have no Registry link")
	}
	if has(aa, "/sites", `href="/registry"`) {
		t.Fatal("an AA has a Registry link")
	}

	restore := admintest.SetDecisionHook(func(act admin.Action, d admin.Decision) admin.Decision {
		switch act {
		case admin.ActionResetPassword: // nobody may reset passwords
			return admin.Decision{Rule: "mutated", Reason: "mutated"}
		case admin.ActionCreateOrganization: // everyone has the registry staff's rights
			return admin.Decision{Allow: true, Rule: "mutated", Reason: "mutated"}
		}
		return d
	})
	defer restore()
	if has(aa, userPath, resetForm) || has(aa, userPath, `id="reset"`) {
		t.Error("the reset form is still offered when the decision point refuses it")
	}
	if has(aa, fmt.Sprintf("/users?site=%d", w.acme.ID), `aria-label="Reset the password of Tam Nguyen"`) {
		t.Error("the R column still offers the reset when the decision point refuses it")
	}
	if !has(aa, "/sites", `href="/registry"`) {
		t.Error("the Registry link does not follow the decision point")
	}
	// And the action asks the same decision: refused, nothing changed.
	_, page := aa.get(userPath)
	resp, _ := aa.post(fmt.Sprintf("/users/%d/reset", target), url.Values{"csrf": {csrfOf(t, page)}, "site": {fmt.Sprint(w.acme.ID)}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("reset refused by the decision point: %d, want 403", resp.StatusCode)
	}
}

// TestSharingNeedsFormOrAttestation: the portal sends the form reference or the attestation the
// admin module requires, and shows its refusal next to the field when neither is given.
func TestSharingNeedsFormOrAttestation(t *testing.T) {
	w := newWorld(t)
	id := w.patient("Doe", "Jane", "2020-02-03", admin.SharingYes, "MRN-5", w.acme)
	c := newClient(t, w)
	c.signIn("tnguyen")
	path := fmt.Sprintf("/patients/%d", id)
	resp, body := c.formPost(path, path+"/sharing", url.Values{"status": {"N"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="form_ref-err"`) || !strings.Contains(body, "or an attestation") {
		t.Fatalf("objection without form or attestation: %d", resp.StatusCode)
	}
	resp, body = c.formPost(path, path+"/sharing", url.Values{"status": {"N"}, "attestation": {"told us in person at the visit"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "data-sharing status was changed") {
		t.Fatalf("objection with an attestation: %d", resp.StatusCode)
	}
	var attestation string
	w.must(w.db.Pool.QueryRow(t.Context(), `SELECT coalesce(attestation, '') FROM sharing_changes WHERE registry_patient_id = $1`, id).Scan(&attestation))
	if attestation != "told us in person at the visit" {
		t.Errorf("recorded attestation %q", attestation)
	}
	// The patient's data-sharing history shows it: which form, or how it was attested.
	if _, body := c.get(path); !strings.Contains(body, "attested: told us in person at the visit") {
		t.Errorf("the data-sharing history does not show the attestation:\n%s", body)
	}
}

// TestRemoveFromSite: an Access Administrator removes a user from their site on the user's page;
// the user's account and other site stay. The site's last Access Administrator cannot be removed:
// the refusal is said next to the form and nothing changes.
func TestRemoveFromSite(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// tnguyen also belongs to Beta, by invitation accepted.
	tn := w.users["tnguyen"]
	inv, err := w.svc.InviteToSite(ctx, w.sys, admin.SiteInvitationInput{UserID: tn.ID, SiteID: w.beta.ID, Role: admin.RoleReadOnly})
	w.must(err)
	_, err = w.svc.AnswerSiteInvitation(ctx, admin.Actor{UserID: tn.ID, Name: tn.Username, Memberships: tn.Memberships}, inv.ID, true)
	w.must(err)

	c := newClient(t, w)
	c.signIn("aalvarez")
	page := fmt.Sprintf("/users/%d?site=%d", tn.ID, w.acme.ID)
	if _, body := c.get(page); !strings.Contains(body, "Remove from ACME-01") {
		t.Fatalf("the user page offers no removal from the AA's site")
	}
	resp, body := c.formPost(page, fmt.Sprintf("/users/%d/membership/remove", tn.ID), url.Values{"site": {fmt.Sprint(w.acme.ID)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "The user was removed from the site") {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	u, err := w.svc.User(ctx, w.sys, tn.ID)
	w.must(err)
	if u.Membership(w.acme.ID) != nil || u.Membership(w.beta.ID) == nil || u.Status != admin.UserActive {
		t.Errorf("after removal from ACME-01: %+v", u.Memberships)
	}

	aa := w.users["aalvarez"]
	page = fmt.Sprintf("/users/%d?site=%d", aa.ID, w.acme.ID)
	resp, body = c.formPost(page, fmt.Sprintf("/users/%d/membership/remove", aa.ID), url.Values{"site": {fmt.Sprint(w.acme.ID)}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="remove-err"`) || !strings.Contains(body, "last active access administrator") {
		t.Errorf("removing the last AA: %d", resp.StatusCode)
	}
	if u, _ := w.svc.User(ctx, w.sys, aa.ID); u.Membership(w.acme.ID) == nil {
		t.Error("the last AA was removed")
	}
}

// TestSharingRefusalSaysWhy: a user who may not set a patient's data sharing is told the reason
// the decision point gives: their role (Read Only), or that their organization did not report the
// patient, not always the role.
func TestSharingRefusalSaysWhy(t *testing.T) {
	w := newWorld(t)
	id := w.patient("Okafor", "Ada", "2019-07-21", admin.SharingUnknown, "MRN-O", w.acme)
	for _, tc := range []struct{ user, want string }{
		{"rreader", "requires a role other than Read Only"},
		{"bbrown", "users of an organization that reported patient"},
	} {
		c := newClient(t, w)
		c.signIn(tc.user)
		_, body := c.get(fmt.Sprintf("/patients/%d", id))
		if !strings.Contains(body, "You cannot set this patient") || !strings.Contains(body, tc.want) {
			t.Errorf("%s on patient %d: the page does not say %q:\n%s", tc.user, id, tc.want, body)
		}
	}
}

// TestPendingInvitationShows: an existing user invited to another site sees, on every page, how
// many invitations wait for an answer; accepting one says which site they joined, and the count
// is gone.
func TestPendingInvitationShows(t *testing.T) {
	w := newWorld(t)
	tn := w.users["tnguyen"]
	inv, err := w.svc.InviteToSite(context.Background(), w.sys, admin.SiteInvitationInput{UserID: tn.ID, SiteID: w.beta.ID, Role: admin.RoleReadOnly})
	w.must(err)
	c := newClient(t, w)
	c.signIn("tnguyen")
	count := regexp.MustCompile(`Invitations <span class="count">(\d+)<`)
	if _, body := c.get("/patients"); count.FindStringSubmatch(body) == nil || count.FindStringSubmatch(body)[1] != "1" {
		t.Fatalf("the navigation bar does not count the pending invitation")
	}
	resp, body := c.formPost("/invitations", fmt.Sprintf("/invitations/%d/accept", inv.ID), url.Values{})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "you are now a member of site BETA-01, as Read Only") {
		t.Fatalf("accept: %d\n%s", resp.StatusCode, body)
	}
	if count.MatchString(body) {
		t.Error("the count stays after the invitation was accepted")
	}
}
