package ingest

import "errors"

// ErrUnavailable is the pipeline's answer (from Pending.Wait and Submit, wrapped) when the
// registry's database stayed unavailable longer than the committer holds a message for it. The
// message has no ACK: it was not stored, or it was stored but the registry could not yet find out
// (an interrupted commit), and either way the sender's resend of the same message is answered
// correctly once the database is back (a stored message is recognised as a resend).
//
// Transports must not answer such a message with an ACK, in particular not with "AR, send it again
// later", which many EHR interfaces treat as final: MLLP closes the connection without an ACK (its
// senders resend automatically), SOAP answers the WSDL's UnknownFault (soap:Receiver) with a retry
// hint. Test with errors.Is.
var ErrUnavailable = errors.New("ingest: the registry database is unavailable")
