package portal

import (
	"net/http"

	"github.com/vaxgate/vaxgate/admin"
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
	p.render(w, r, s, http.StatusOK, "invitations", "Your invitations", view{Data: invs})
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
		if _, err := p.svc.AnswerSiteInvitation(r.Context(), *s.actor, id, accept); err != nil {
			p.fail(w, r, s, err)
			return
		}
		notice := "declined"
		if accept {
			notice = "accepted"
		}
		seeOther(w, r, "/invitations", notice, nil)
	}
}

// pendingInvitations is the number of the actor's pending site invitations, for the banner of
// the landing pages (0 when it cannot be read: the Invitations page says why).
func (p *Portal) pendingInvitations(r *http.Request, a *admin.Actor) int {
	if a == nil || a.UserID == 0 {
		return 0
	}
	invs, err := p.svc.MySiteInvitations(r.Context(), *a)
	if err != nil {
		return 0
	}
	return len(invs)
}
