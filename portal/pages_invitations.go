package portal

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// invitations lists the signed-in user's pending invitations to sites (an Access Administrator
// invited them as an existing user): each is accepted or declined here, and nothing changes
// until it is.
func (p *Portal) invitations(w http.ResponseWriter, r *http.Request, s *session) {
	invs, err := p.svc.MySiteInvitations(r.Context(), *s.actor)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	v := view{Data: invs}
	if r.URL.Query().Get("ok") == "accepted" {
		// Name the site joined: from the actor's memberships, not from the address.
		site := formID(r, "site")
		for _, m := range s.actor.Memberships {
			if m.SiteID == site {
				v.Notice = fmt.Sprintf("You accepted the invitation: you are now a member of site %s, as %s.", m.SiteCode, m.Role.Label())
			}
		}
	}
	p.render(w, r, s, http.StatusOK, "invitations", "Your invitations", v)
}

// answerInvitation accepts or declines one of the user's invitations; the Service lets only the
// invitee answer (another user's invitation is not found).
func (p *Portal) answerInvitation(accept bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id, ok := pathID(r, "id")
		if !ok {
			p.notFound(w, r, s)
			return
		}
		inv, err := p.svc.AnswerSiteInvitation(r.Context(), *s.actor, id, accept)
		if err != nil {
			p.fail(w, r, s, err)
			return
		}
		if accept {
			seeOther(w, r, "/invitations", "accepted", url.Values{"site": {strconv.FormatInt(inv.SiteID, 10)}})
			return
		}
		seeOther(w, r, "/invitations", "declined", nil)
	}
}
