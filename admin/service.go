package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin/passwd"
)

// Options configure a Service. Zero values take the defaults noted.
type Options struct {
	Now    func() time.Time // clock (default time.Now)
	Logger *zap.Logger      // default: no logging
	SMTP   SMTPConfig       // where invitation emails go; no Addr: invitations cannot be emailed
	// BaseURL is the public URL of the HTTP listener; registration links are
	// BaseURL + "/api/v1/register?token=…" (default "http://localhost:8080").
	BaseURL          string
	LockoutThreshold int           // failed logins in a row that lock an account (default 5)
	LockDuration     time.Duration // how long a source that failed is locked out of the account (default 15m)
	SiteInviteTTL    time.Duration // lifetime of an invitation of an existing user to a site (default 14 days)
	SessionTTL       time.Duration // lifetime of an API session (default 8h)
	InviteTTL        time.Duration // lifetime of a registration link (default 72h)
	InactiveAfter    time.Duration // unused accounts become Inactive Expired after this (default 90 days)
	AgreementVersion string        // the user agreement accepted at registration (default "1")
	// RegistryName and HelpDesk are named in e-mails (default "the immunization registry", none).
	RegistryName, HelpDesk string
	// Invitation is the invitation e-mail (ParseInvitationTemplate; default
	// DefaultInvitationTemplate).
	Invitation *template.Template
}

// Service holds the admin rules. It is safe for concurrent use.
type Service struct {
	st  Store
	o   Options
	log *zap.Logger

	dummyOnce sync.Once
	dummyHash string
	throttle  *loginThrottle
}

// NewService returns a Service over st.
func NewService(st Store, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.BaseURL == "" {
		o.BaseURL = "http://localhost:8080"
	}
	if o.LockoutThreshold <= 0 {
		o.LockoutThreshold = 5
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.InviteTTL <= 0 {
		o.InviteTTL = 72 * time.Hour
	}
	if o.InactiveAfter <= 0 {
		o.InactiveAfter = 90 * 24 * time.Hour
	}
	if o.RegistryName == "" {
		o.RegistryName = "the immunization registry"
	}
	if o.Invitation == nil {
		o.Invitation = defaultInvitation
	}
	if o.AgreementVersion == "" {
		o.AgreementVersion = "1"
	}
	if o.LockDuration <= 0 {
		o.LockDuration = 15 * time.Minute
	}
	if o.SiteInviteTTL <= 0 {
		o.SiteInviteTTL = 14 * 24 * time.Hour
	}
	return &Service{st: st, o: o, log: o.Logger, throttle: newLoginThrottle(o.LockoutThreshold, o.LockDuration)}
}

// Options returns the options in effect (with defaults applied).
func (s *Service) Options() Options { return s.o }

// now is the service clock, in UTC, at the database's precision (microseconds).
func (s *Service) now() time.Time { return s.o.Now().UTC().Truncate(time.Microsecond) }

// Actor is who performs an action: an authenticated user (from a session) or the system (the
// command line, the demo set-up, periodic jobs).
type Actor struct {
	UserID             int64
	Name               string // username, or "system:<tool>"
	System             bool
	RegistryAdmin      bool
	Memberships        []Membership
	SessionID          int64
	MustChangePassword bool
}

// SystemActor is the actor of trusted automatic tools (the demo set-up, periodic jobs), named
// "system:<tool>" in the audit log. It may do everything registry staff may.
func SystemActor(tool string) Actor { return Actor{System: true, Name: "system:" + tool} }

// OperatorActor is the actor of a person at the command line, named "cli:<os-user>" in the audit
// log: whoever can run the command line can reach the database anyway, so it may do everything
// registry staff may, but the audit log says who it was.
func OperatorActor(osUser string) Actor {
	if osUser == "" {
		osUser = "unknown"
	}
	return Actor{System: true, Name: "cli:" + osUser}
}

func (a Actor) privileged() bool { return a.System || a.RegistryAdmin }

func (a Actor) userIDPtr() *int64 {
	if a.UserID == 0 {
		return nil
	}
	id := a.UserID
	return &id
}

// sitesWhere returns the ids of the sites where the decision point allows a to do act; all is
// true for registry staff (every site).
func (s *Service) sitesWhere(ctx context.Context, a Actor, act Action) (all bool, ids []int64, err error) {
	if a.privileged() {
		return true, nil, nil
	}
	if len(a.Memberships) == 0 {
		return false, nil, nil
	}
	// The candidates: the actor's sites and, for Health System Users, their health systems'.
	seen := map[int64]bool{}
	var candidates []Site
	for _, m := range a.Memberships {
		f := SiteFilter{IDs: []int64{m.SiteID}}
		if m.Role.HealthSystem() {
			f = SiteFilter{HealthSystemID: m.HealthSystemID}
		}
		sites, err := s.st.ListSites(ctx, f)
		if err != nil {
			return false, nil, fmt.Errorf("admin: sites of the actor: %w", err)
		}
		for _, site := range sites {
			if !seen[site.ID] {
				seen[site.ID] = true
				candidates = append(candidates, site)
			}
		}
	}
	for i := range candidates {
		if Decide(a, act, Target{Site: &candidates[i]}).Allow {
			ids = append(ids, candidates[i].ID)
		}
	}
	return false, ids, nil
}

func (a Actor) siteIDs() []int64 {
	ids := make([]int64, 0, len(a.Memberships))
	for _, m := range a.Memberships {
		ids = append(ids, m.SiteID)
	}
	return ids
}

// audit appends an audit entry in the transaction st and logs the action (ids only). rule is the
// authorization rule that allowed it (empty for the system's own actions).
func (s *Service) audit(ctx context.Context, st Store, a Actor, rule, action, targetType string, targetID int64, siteIDs []int64, before, after any) error {
	e := &AuditEntry{
		At: s.now(), ActorUserID: a.userIDPtr(), Actor: a.Name, Action: action, Rule: rule,
		TargetType: targetType, TargetID: strconv.FormatInt(targetID, 10), SiteIDs: siteIDs,
	}
	if e.SiteIDs == nil {
		e.SiteIDs = []int64{}
	}
	var err error
	if e.Before, err = marshalAudit(before); err != nil {
		return err
	}
	if e.After, err = marshalAudit(after); err != nil {
		return err
	}
	if err := st.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("admin: audit %s: %w", action, err)
	}
	s.log.Info("admin action", zap.String("action", action), zap.Int64("actor_user_id", a.UserID),
		zap.Bool("system", a.System), zap.String("target_type", targetType), zap.Int64("target_id", targetID),
		zap.Int64s("site_ids", siteIDs))
	return nil
}

func marshalAudit(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("admin: audit payload: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}

// newToken returns a random 32-byte token (base64url) and its SHA-256 digest, which is what the
// store keeps.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("admin: token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// validToken reports whether tok has the shape newToken produces (so that junk is refused
// before it reaches the database).
func validToken(tok string) bool {
	if len(tok) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil
}

// dummyVerify spends the time of a password verification, so that unknown usernames are not
// told apart from wrong passwords by timing.
func (s *Service) dummyVerify(pw string) {
	s.dummyOnce.Do(func() {
		h, err := passwd.Hash("dummy-Password-1!")
		if err == nil {
			s.dummyHash = h
		}
	})
	if s.dummyHash != "" {
		_, _ = passwd.Verify(s.dummyHash, pw)
	}
}
