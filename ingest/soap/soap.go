// Package soap is vaxgate's SOAP transport: the CDC IIS web service (WSDL namespace
// urn:cdc:iisb:2011, SOAP 1.2 document/literal) that registries expose to EHR systems and health
// information exchanges.
//
// The Handler serves the WSDL (GET ?wsdl, with this deployment's address; ?wsdl=1.1 describes the
// same service over SOAP 1.1, which it also answers) and two operations: connectivityTest echoes
// its argument; submitSingleMessage authenticates the sender (username and password in the body,
// or a WS-Security UsernameToken header; repeated failures are throttled), checks that the
// facilityID belongs to the sender's site, hands the HL7 message of the payload (one message,
// possibly wrapped in BHS/BTS; several only where Options.MultiMessage allows) to the same
// pipeline as MLLP and answers with its ACK. Errors are the WSDL's faults, with its fixed Reason
// values: SecurityFault, MessageTooLargeFault (too large, or more than one message),
// UnsupportedOperationFault and UnknownFault (the WSDL's general fault: soap:Sender for malformed
// or empty requests, soap:Receiver for internal failures and, with a Retry-After, while the
// database is unavailable). Like MLLP, the transport only frames, authenticates and hands over:
// what a message means is the pipeline's business.
package soap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// Submitter processes one HL7 message and returns its ACK; ingest.Pipeline implements it. An error
// means an internal failure: the request is answered with an UnknownFault.
type Submitter interface {
	Submit(ctx context.Context, env ingest.Envelope) ([]byte, error)
}

// starter is the pipeline's two-step form of Submit. With it, the messages of one request are all
// started before the first ACK is awaited, so that a batch shares group commits instead of paying
// one commit per message.
type starter interface {
	Start(ctx context.Context, env ingest.Envelope) ingest.Pending
}

// DefaultMaxMessageSize is the default limit on the HL7 payload of one request.
const DefaultMaxMessageSize = 4 << 20

// Options configure a Handler.
type Options struct {
	Submitter Submitter      // required
	Senders   ingest.Senders // required: the SOAP credentials
	// MaxMessageSize bounds the HL7 payload of one request, in bytes (default 4 MiB); a larger one
	// gets a MessageTooLargeFault.
	MaxMessageSize int
	// MaxRequestSize bounds the whole HTTP body (default: MaxMessageSize plus an eighth for XML
	// escaping, plus 64 KiB for the envelope). A request announcing a larger Content-Length is
	// answered without its body being read; a chunked one is cut off at the limit.
	MaxRequestSize int64
	// PublicURL is the address of the HTTP listener as senders reach it (through a proxy, say
	// https://iis.example.org); the WSDL advertises PublicURL + the request path, or PublicURL
	// itself when it already ends in that path. ServiceURL, when set, decides instead. With
	// neither, the address is taken from the request (scheme, Host header, path).
	PublicURL  string
	ServiceURL func(r *http.Request) string
	Logger     *zap.Logger           // nil: no logs
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Clock      func() time.Time      // nil: time.Now
	// AuthCacheTTL is how long a verified username and password are trusted without verifying
	// the argon2id hash again (default 5 minutes; negative: never cached). The credential is
	// looked up on every request regardless, so revocations and password changes apply at once.
	AuthCacheTTL time.Duration
	// AuthCacheSize bounds the cache (default 1024 entries).
	AuthCacheSize int
	// MaxConcurrentVerifications bounds argon2id verifications in progress (default GOMAXPROCS):
	// each takes the hash's memory cost.
	MaxConcurrentVerifications int
	// MultiMessage lets one submitSingleMessage carry several HL7 messages (concatenated, or a
	// BHS/BTS batch of several), answered with their ACKs in order. Off by default: as the CDC
	// WSDL's operation name says and the NIST connectivity test SOAPCON_4 checks, a payload holding
	// more than one message is answered with a MessageTooLargeFault; one message wrapped in BHS/BTS
	// (the MIIS form) is always accepted.
	MultiMessage bool
	// Throttle slows password guessing down (see ThrottleOptions; zero values are the defaults).
	Throttle ThrottleOptions
	// RetryAfter is the delay a sender is told to wait (HTTP Retry-After and the fault's Detail)
	// when the registry's database is unavailable (default 30 seconds).
	RetryAfter time.Duration
}

// Handler serves the CDC IIS web service over HTTP. Mount it at /soap.
type Handler struct {
	o          Options
	log        *zap.Logger
	maxRequest int64
	auth       *authenticator

	requests     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

// NewHandler returns the SOAP service. It registers its metrics with o.Registerer when set.
func NewHandler(o Options) (*Handler, error) {
	if o.Submitter == nil || o.Senders == nil {
		return nil, errors.New("soap: handler needs a Submitter and Senders")
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxRequestSize <= 0 {
		o.MaxRequestSize = int64(o.MaxMessageSize) + int64(o.MaxMessageSize)/8 + 64<<10
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.AuthCacheTTL == 0 {
		o.AuthCacheTTL = 5 * time.Minute
	}
	if o.AuthCacheSize <= 0 {
		o.AuthCacheSize = 1024
	}
	if o.MaxConcurrentVerifications <= 0 {
		o.MaxConcurrentVerifications = runtime.GOMAXPROCS(0)
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 30 * time.Second
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("soap: public URL %q is not an http(s) URL", o.PublicURL)
		}
	}
	auth, err := newAuthenticator(o.Senders, o.Clock, o.AuthCacheTTL, o.AuthCacheSize, o.MaxConcurrentVerifications, o.Throttle)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		o: o, log: o.Logger.Named("soap"), maxRequest: o.MaxRequestSize, auth: auth,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_soap_requests_total",
			Help: "SOAP requests, by operation and outcome (ok, or the fault: security, too_large, unsupported, malformed, internal_error, unavailable).",
		}, []string{"operation", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_soap_auth_failures_total",
			Help: "submitSingleMessage requests refused with a SecurityFault, by reason.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vaxgate_soap_request_seconds",
			Help:    "Time to answer a SOAP request, from its arrival to the answer being written.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.authFailures, h.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("soap: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

// ServeHTTP answers GET ?wsdl with the WSDL and POST with the SOAP operations.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.serveSOAP(w, r)
	case http.MethodGet, http.MethodHead:
		if wantsWSDL(r.URL) {
			h.serveWSDL(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprintf(w, "vaxgate: CDC IIS web service (SOAP 1.2, %s). POST SOAP requests here; the WSDL is at %s?wsdl (SOAP 1.1: %s?wsdl=1.1)\n",
			Namespace, h.serviceURL(r), h.serviceURL(r))
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed: POST SOAP requests, GET ?wsdl", http.StatusMethodNotAllowed)
	}
}

func wantsWSDL(u *url.URL) bool {
	for k := range u.Query() {
		if strings.EqualFold(k, "wsdl") {
			return true
		}
	}
	return false
}

// wantsSOAP11 reports a request for the SOAP 1.1 description: ?wsdl=1.1 (or =soap11).
func wantsSOAP11(u *url.URL) bool {
	for k, vs := range u.Query() {
		if strings.EqualFold(k, "wsdl") {
			for _, v := range vs {
				if v == "1.1" || strings.EqualFold(v, "soap11") {
					return true
				}
			}
		}
	}
	return false
}

func (h *Handler) serveWSDL(w http.ResponseWriter, r *http.Request) {
	start := h.o.Clock()
	body := WSDL(h.serviceURL(r))
	if wantsSOAP11(r.URL) {
		body = WSDL11(h.serviceURL(r))
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	h.requests.WithLabelValues("wsdl", "ok").Inc()
	h.duration.WithLabelValues("wsdl").Observe(h.o.Clock().Sub(start).Seconds())
}

// serviceURL is the address the WSDL advertises for this request.
func (h *Handler) serviceURL(r *http.Request) string {
	if h.o.ServiceURL != nil {
		return h.o.ServiceURL(r)
	}
	if h.o.PublicURL != "" {
		base := strings.TrimRight(h.o.PublicURL, "/")
		if strings.HasSuffix(base, r.URL.Path) {
			return base
		}
		return base + r.URL.Path
	}
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if u.Host == "" {
		u.Host = "localhost"
	}
	return u.String()
}

// outcome is what a request came to, for the log and the metrics.
type outcome struct {
	op       string
	fault    *fault
	username string // submitSingleMessage: who tried
	site     string
	messages int
	err      error // internal failure
}

func (h *Handler) serveSOAP(w http.ResponseWriter, r *http.Request) {
	start := h.o.Clock()
	v, charset, ferr := requestType(r.Header.Get("Content-Type"))
	res := outcome{op: "unknown"}
	defer func() { h.finish(r, start, res) }()
	if ferr != nil {
		res.fault = ferr
		h.writeFault(w, v, ferr)
		return
	}
	// Refuse an announced oversize body before reading any of it.
	if r.ContentLength > h.maxRequest {
		w.Header().Set("Connection", "close")
		res.fault = tooLargeFault(fmt.Sprintf("The request is %d bytes; this registry accepts requests of at most %d bytes (HL7 payload at most %d bytes). Split the messages over several requests.",
			r.ContentLength, h.maxRequest, h.o.MaxMessageSize))
		h.writeFault(w, v, res.fault)
		return
	}
	body := http.MaxBytesReader(w, r.Body, h.maxRequest)
	req, err := decodeEnvelope(body, h.o.MaxMessageSize, charset)
	if err != nil {
		if req != nil {
			v = req.version
			if req.op != "" {
				res.op = req.op
			}
		}
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &res.fault):
			if res.fault.code == codeVersionMismatch {
				v = soap12
			}
		case errors.As(err, &mbe):
			res.fault = tooLargeFault(fmt.Sprintf("The request is larger than %d bytes, the most this registry accepts (HL7 payload at most %d bytes). Split the messages over several requests.",
				h.maxRequest, h.o.MaxMessageSize))
		default:
			res.fault = malformed("The request body could not be read.")
			res.err = err
		}
		if res.fault.kind == UnsupportedOperationFault {
			res.op = "unsupported"
		}
		h.writeFault(w, v, res.fault)
		return
	}
	v, res.op = req.version, req.op
	switch req.op {
	case opConnectivityTest:
		h.write(w, http.StatusOK, v, encodeResponse(v, req.op, req.echoBack))
	case opSubmitSingleMessage:
		text, f := h.submit(r, req, &res)
		if f != nil {
			res.fault = f
			h.writeFault(w, v, f)
			return
		}
		h.write(w, http.StatusOK, v, encodeResponse(v, req.op, text))
	}
}

// requestType reads the Content-Type: the SOAP version it implies (the envelope's namespace
// decides in the end) and the charset. A type that is not XML is refused with HTTP 415.
func requestType(ct string) (version, string, *fault) {
	if ct == "" {
		return soap12, "", nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		f := malformed("The Content-Type %q cannot be read: send application/soap+xml.", ct)
		f.httpStatus = http.StatusUnsupportedMediaType
		return soap12, "", f
	}
	switch mt {
	case "application/soap+xml", "application/xml":
		return soap12, params["charset"], nil
	case "text/xml":
		return soap11, params["charset"], nil
	}
	f := malformed("Content-Type %s is not supported: send SOAP 1.2 as application/soap+xml.", mt)
	f.httpStatus = http.StatusUnsupportedMediaType
	return soap12, "", f
}

// submit runs submitSingleMessage and returns the ACKs, or the fault to answer with.
func (h *Handler) submit(r *http.Request, req *request, res *outcome) (string, *fault) {
	ctx := r.Context()
	username, password := req.username, req.password
	if tok := req.token; tok != nil && (username == "" || password == "") {
		if username == "" {
			username = tok.username
		}
		if password == "" {
			password = tok.password
			if !isPasswordText(tok.passwordType) {
				res.username = username
				f := securityFault(authPasswordDigest)
				f.detail = "The WS-Security password must be of type PasswordText (over TLS): this registry stores only a hash of the password and cannot check a PasswordDigest."
				return "", f
			}
		}
	}
	res.username = username
	cred, err := h.auth.authenticate(ctx, username, password, sourceOf(r.RemoteAddr))
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			return "", securityFault(ae.reason)
		}
		res.err = err
		if ctx.Err() != nil {
			return "", internalFault(ctx)
		}
		// The credentials could not be read: the database is unavailable. The sender retries.
		return "", unavailableFault(h.o.RetryAfter)
	}
	sender := cred.Sender
	res.site = sender.SiteCode
	if id := req.facilityID; id != "" && id != cred.FacilityID && !sender.MaySendFor(id) {
		f := securityFault(authFacility)
		// The password was right: naming the problem tells nothing to someone who does not have it.
		f.detail = fmt.Sprintf("Facility ID %q is not registered for the site of this username.", id)
		return "", f
	}

	payload := bytes.TrimSpace(req.hl7Message)
	if len(payload) == 0 {
		// The sender's mistake, answered before anything reaches the pipeline.
		return "", malformed("<hl7Message> is empty or missing: send one HL7 message (escaped or in a CDATA section).")
	}
	msgs := hl7.SplitMessages(payload)
	switch {
	case len(msgs) == 0:
		return "", malformed("<hl7Message> holds a batch envelope (BHS/BTS) without any message: send one HL7 message.")
	case len(msgs) > 1 && !h.o.MultiMessage:
		res.messages = len(msgs)
		return "", tooLargeFault(fmt.Sprintf("<hl7Message> holds %d HL7 messages; submitSingleMessage accepts one message per request "+
			"(it may be wrapped in BHS/BTS). Send each message in a request of its own.", len(msgs)))
	}
	res.messages = len(msgs)
	received := h.o.Clock()
	acks, err := h.process(ctx, msgs, ingest.Envelope{
		Transport: ingest.TransportSOAP, Sender: &sender, Remote: r.RemoteAddr, ReceivedAt: received,
	})
	if err != nil {
		res.err = err
		if errors.Is(err, ingest.ErrUnavailable) && ctx.Err() == nil {
			// The database stayed unavailable past the writer's wait: nothing is acknowledged,
			// and the sender is told when to send the same request again.
			return "", unavailableFault(h.o.RetryAfter)
		}
		if errors.Is(err, ingest.ErrEmptyMessage) {
			// Blank payloads are refused above; this keeps the pipeline's verdict the sender's
			// should a message the splitter kept still be empty.
			return "", malformed("<hl7Message> holds an empty HL7 message: send one HL7 message.")
		}
		return "", internalFault(ctx)
	}
	var out strings.Builder
	for i, a := range acks {
		out.Write(a)
		if len(a) > 0 && a[len(a)-1] != '\r' && a[len(a)-1] != '\n' && i < len(acks)-1 {
			out.WriteByte('\r')
		}
		h.logACK(sender.SiteCode, req.facilityID, a)
	}
	return out.String(), nil
}

// process hands the messages to the pipeline in order and returns their ACKs in the same order.
// When a message fails internally, the messages before it may be stored: the sender's retry of the
// whole request gets their original ACKs back (the pipeline recognises resends).
func (h *Handler) process(ctx context.Context, msgs [][]byte, env ingest.Envelope) ([][]byte, error) {
	acks := make([][]byte, len(msgs))
	if st, ok := h.o.Submitter.(starter); ok {
		pending := make([]ingest.Pending, len(msgs))
		for i, m := range msgs {
			e := env
			e.Payload = m
			pending[i] = st.Start(ctx, e)
		}
		for i, p := range pending {
			a, err := p.Wait(ctx)
			if err != nil {
				return nil, fmt.Errorf("soap: message %d of %d: %w", i+1, len(msgs), err)
			}
			acks[i] = a
		}
		return acks, nil
	}
	for i, m := range msgs {
		e := env
		e.Payload = m
		a, err := h.o.Submitter.Submit(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("soap: message %d of %d: %w", i+1, len(msgs), err)
		}
		acks[i] = a
	}
	return acks, nil
}

// logACK logs what became of one message: its control ID and ACK code, never its content.
func (h *Handler) logACK(site, facility string, a []byte) {
	if ce := h.log.Check(zap.DebugLevel, "message acknowledged"); ce != nil {
		var code, control string
		if m, err := hl7.Parse(a); err == nil {
			code, control = m.Get("MSA-1"), m.Get("MSA-2")
		}
		ce.Write(zap.String("site", site), zap.String("facility", facility),
			zap.String("control_id", control), zap.String("ack_code", code))
	}
}

func (h *Handler) write(w http.ResponseWriter, status int, v version, body []byte) {
	w.Header().Set("Content-Type", v.contentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h *Handler) writeFault(w http.ResponseWriter, v version, f *fault) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((f.retryAfter+time.Second-1)/time.Second)))
	}
	h.write(w, f.status(v), v, encodeFault(v, f))
}

// finish counts and logs a SOAP request. Passwords and payloads are never logged.
func (h *Handler) finish(r *http.Request, start time.Time, res outcome) {
	outcome := "ok"
	if res.fault != nil {
		outcome = res.fault.outcome
	}
	h.requests.WithLabelValues(res.op, outcome).Inc()
	h.duration.WithLabelValues(res.op).Observe(h.o.Clock().Sub(start).Seconds())
	fields := []zap.Field{zap.String("operation", res.op), zap.String("outcome", outcome), zap.String("remote", r.RemoteAddr)}
	if res.site != "" {
		fields = append(fields, zap.String("site", res.site))
	}
	if res.messages > 0 {
		fields = append(fields, zap.Int("messages", res.messages))
	}
	if res.err != nil {
		fields = append(fields, zap.Error(res.err))
	}
	switch {
	case res.fault != nil && res.fault.kind == SecurityFault:
		h.authFailures.WithLabelValues(res.fault.authReason).Inc()
		h.log.Warn("soap authentication failed", append(fields,
			zap.String("username", res.username), zap.String("reason", res.fault.authReason))...)
	case outcome == "internal_error" || outcome == "unavailable":
		h.log.Error("soap request failed", fields...)
	case res.fault != nil:
		// The sender's mistake, or the sender gone: worth a line, not an alert.
		h.log.Info("soap request answered with a fault", append(fields, zap.String("fault", string(res.fault.kind)),
			zap.String("detail", res.fault.detail))...)
	default:
		h.log.Debug("soap request", fields...)
	}
}
