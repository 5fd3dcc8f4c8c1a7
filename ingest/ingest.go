// Package ingest is the intake pipeline: every transport (MLLP, SOAP, files) hands each HL7 message
// to Pipeline.Submit, which parses it, checks the header and the sender, recognises resends, decodes
// the VXU into registry records, validates them, applies the data-sharing rules, persists them and
// returns the ACK. The ACK is returned only after the records are committed.
package ingest

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Transport names the way a message arrived. It is a metrics label and is archived with the message.
type Transport string

// The transports.
const (
	TransportMLLP Transport = "mllp"
	TransportSOAP Transport = "soap"
	TransportFile Transport = "file"
	// TransportPreload is a historical backload (vaxgate preload) read from files.
	TransportPreload Transport = "preload"
)

// SiteStatus is a site's onboarding status.
type SiteStatus string

// Onboarding statuses: a registered site may not send yet, a testing site sends MSH-11 T to the
// test environment, a production site sends MSH-11 P.
const (
	SiteRegistered SiteStatus = "registered"
	SiteTesting    SiteStatus = "testing"
	SiteProduction SiteStatus = "production"
)

// Sender is an authenticated sender: the site a credential belongs to and what it may send for.
type Sender struct {
	CredentialID   int64
	SiteID         int64
	SiteCode       string
	OrganizationID int64
	Status         SiteStatus
	GoLive         time.Time // zero when the site has no go-live date
	Facilities     []string  // MSH-4 identifiers the site may send for
	// Shared lists, for an MLLP sender identified by its source address, the other sites whose
	// address ranges also contain that address (most specific first): a message whose MSH-4 is not
	// this site's is taken as the first of them whose it is. Nested ranges of different sites (a
	// health system's network and one of its clinics, an exchange relaying several sites) are then
	// told apart by MSH-4 instead of the narrowest range taking every message from its addresses.
	Shared []*Sender
}

// MaySendFor reports whether facility (an MSH-4 HD-1 or HD-2 value) belongs to the sender's site.
func (s *Sender) MaySendFor(facility string) bool {
	for _, f := range s.Facilities {
		if f == facility {
			return true
		}
	}
	return false
}

// Envelope is one HL7 message as a transport received it.
type Envelope struct {
	Transport  Transport
	Sender     *Sender // nil when the transport could not authenticate the sender: the answer is AR
	Remote     string  // peer address, for logs
	Payload    []byte  // one HL7 message; segments end in CR (LF and CRLF are accepted)
	ReceivedAt time.Time
	// TooLarge is the size of a message that exceeded the transport's limit; Payload then holds
	// only its head, from which the pipeline builds an AR.
	TooLarge int
	// Backload marks a historical backload (vaxgate preload): the message is treated as received
	// before the site's go-live date, so a patient first known from it gets data sharing Unknown.
	Backload bool
	// Owned says that Payload is the pipeline's from now on: the transport never writes to it
	// again (MLLP hands over a fresh buffer per frame). The record's strings (header, decoded VXU)
	// then share Payload itself rather than a copy of it (hl7.NewStringsShared): one allocation
	// and one copy of the message fewer. Without it they share a copy, and the transport may
	// reuse Payload's memory once the message is answered.
	Owned bool
}

// SOAPCredential is a site's SOAP credential as stored: the password is only a hash.
type SOAPCredential struct {
	Sender       Sender
	Username     string
	PasswordHash string // argon2id, PHC string (admin/passwd verifies it)
	FacilityID   string
}

// ErrUnknownSender is returned by Senders lookups when no active credential matches.
var ErrUnknownSender = errors.New("ingest: unknown sender")

// Senders finds the credentials transports authenticate against. The store implements it.
type Senders interface {
	// SOAPCredential returns the active SOAP credential with this username, or ErrUnknownSender.
	SOAPCredential(ctx context.Context, username string) (*SOAPCredential, error)
	// MLLPSender returns the sender whose active MLLP credential matches the TLS client certificate
	// subject (when not empty) or the source address, or ErrUnknownSender.
	MLLPSender(ctx context.Context, addr netip.Addr, certSubject string) (*Sender, error)
}

// Pending is a message handed to the pipeline whose records are being committed. Wait returns its
// ACK once the commit is done (or the answer that says why nothing was stored).
type Pending interface {
	Wait(ctx context.Context) (ack []byte, err error)
}

// Readier is implemented by a Pending that can tell, without waiting, whether its Wait would
// return at once. A transport with several answers due on one connection uses it to send those
// that are ready together, in one write, while each is still sent only after its own commit.
type Readier interface {
	Ready() bool
}

// Ready reports whether p's answer is ready now (Wait would not block); false when p cannot tell.
func Ready(p Pending) bool {
	r, ok := p.(Readier)
	return ok && r.Ready()
}
