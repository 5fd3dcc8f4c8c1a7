package registry

import "github.com/vaxgate/vaxgate/ingest"

// Sources of a data-sharing status (sharing_changes.source).
const (
	SourcePolicy = "policy" // the registry's rules (default, go-live, historical only)
	SourceHL7    = "hl7"    // PD1-12, where the policy honours it
)

// fromPD1 is the status PD1-12 asks for (Y = protect → No, N → Yes) where the policy honours it;
// ok is false when it does not, or PD1-12 asks nothing.
func fromPD1(rec *ingest.Record) (status, reason string, ok bool) {
	if !rec.Sharing.HonorPD1 {
		return "", "", false
	}
	switch rec.VXU.Patient.Protection {
	case "Y":
		return "N", "PD1-12 = Y (protection requested)", true
	case "N":
		return "Y", "PD1-12 = N", true
	}
	return "", "", false
}

// initialSharing is the data-sharing status of a registry patient first known from rec: PD1-12
// where the policy honours it; Unknown for a report received before the site's go-live date
// (backload) or for a patient reported with no immunization encounter (historical only); Yes
// otherwise.
func initialSharing(rec *ingest.Record) (status, source, reason string) {
	if status, reason, ok := fromPD1(rec); ok {
		return status, SourceHL7, reason
	}
	switch {
	case rec.Sharing.PreGoLive:
		return "U", SourcePolicy, "reported before the site's go-live date"
	case !hasEncounter(rec.VXU):
		return "U", SourcePolicy, "historical reports only, no immunization encounter"
	}
	return "Y", SourcePolicy, "default"
}

// sharingUpdate is what a later report changes of an existing status: PD1-12 where the policy
// honours it (under the default policy it never does: an objection is recorded in the registry by
// an authorized user), and Unknown resolved to Yes by an immunization encounter reported after
// go-live. Yes and No are never changed by the registry's own rules.
func sharingUpdate(rec *ingest.Record, current string) (next, source, reason string) {
	if status, reason, ok := fromPD1(rec); ok {
		return status, SourceHL7, reason
	}
	if current == "U" && !rec.Sharing.PreGoLive && hasEncounter(rec.VXU) {
		return "Y", SourcePolicy, "immunization encounter reported"
	}
	return current, "", ""
}

// hasEncounter reports an immunization encounter in the message: a vaccination event the sender
// itself recorded (administered dose, refusal, evidence of immunity, not administered), as
// opposed to a historical record (RXA-9 other than 00) or a deletion.
func hasEncounter(v *ingest.VXU) bool {
	for i := range v.Orders {
		o := &v.Orders[i]
		if o.ActionCode == "D" || o.Historical() {
			continue
		}
		if _, ok := OrderKind(o); ok {
			return true
		}
	}
	return false
}
