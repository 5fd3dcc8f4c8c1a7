package portal

import (
	"net/http"
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
