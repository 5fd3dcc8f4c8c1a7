package registry

import (
	"fmt"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Vaccination kinds (vaccinations.kind).
const (
	KindDose            = "dose"
	KindRefusal         = "refusal"
	KindImmunity        = "immunity"
	KindNotAdministered = "not_administered"
)

// OrderKind is what an order group records. ok is false for CVX 998 ("no vaccine administered")
// without evidence of immunity: there is nothing to record.
func OrderKind(o *ingest.Order) (kind string, ok bool) {
	switch {
	case o.CompletionStatus == "RE":
		return KindRefusal, true
	case codes.NormalizeCVX(o.CVX) == "998":
		return KindImmunity, hasImmunityEvidence(o)
	case o.CompletionStatus == "NA":
		return KindNotAdministered, true
	}
	return KindDose, true
}

// hasImmunityEvidence reports an OBX 59784-9 (disease with presumed immunity) in the group.
func hasImmunityEvidence(o *ingest.Order) bool {
	for _, ob := range o.Observations {
		if ob.Identifier.Code == "59784-9" {
			return true
		}
	}
	return false
}

// doseKey groups reports of the same dose: the vaccine groups of the CVX (so that a historical
// "HepB, unspecified formulation" and the administered pediatric HepB of that day are one dose),
// else the CVX, else the NDC.
func (r *Registry) doseKey(o *ingest.Order) string {
	cvx := codes.NormalizeCVX(o.CVX)
	if cvx == "" && o.NDC != "" {
		if n, ok := r.codes.NDC(o.NDC); ok {
			cvx = n.CVX
		}
	}
	if cvx == "" {
		return "ndc:" + o.NDC
	}
	if g := r.groupKeys[codes.NormalizeCVX(cvx)]; g != "" {
		return g
	}
	return "cvx:" + cvx
}

// OrderNumber is ORC-3 as an identity: empty when absent or when it is the guide's placeholder
// 9999 for records of doses not given (refusals, not administered), which every such record of a
// sender carries and which therefore identifies none.
func OrderNumber(o *ingest.Order) string {
	id, _, _ := strings.Cut(o.FillerOrder, "^")
	if id == "9999" {
		return ""
	}
	return o.FillerOrder
}

// vaccineCode is the sender-level identity of the vaccine: the CVX, else the NDC.
func vaccineCode(o *ingest.Order) string {
	if o.CVX != "" {
		return o.CVX
	}
	return "ndc:" + o.NDC
}

// unknownKey is the warning for an update (U) or deletion (D) of a vaccination the registry does
// not hold for this patient from the sender's organization: it names the order number (ORC-3)
// when there is one, else the vaccine and date that identify the event.
func unknownKey(o *ingest.Order, action, order string, otherPatient bool) *ack.Finding {
	verb, done := "update", "nothing was changed. To add the vaccination, send it with RXA-21 = A."
	if action == "D" {
		verb, done = "delete", "nothing was deleted."
	}
	var text string
	switch {
	case otherPatient:
		text = fmt.Sprintf("RXA-21 = %s (%s) names order %s (ORC-3), which the registry holds for another patient of your organization: %s Check the order number and the patient.",
			action, verb, order, done)
	case order != "":
		text = fmt.Sprintf("RXA-21 = %s (%s) names order %s (ORC-3), which the registry does not hold for this patient from your organization: %s",
			action, verb, order, done)
	default:
		text = fmt.Sprintf("RXA-21 = %s (%s): the registry holds no vaccination %s of %s for this patient from your organization: %s",
			action, verb, vaccineCode(o), o.AdministeredAt, done)
	}
	return &ack.Finding{
		Rule: "rxa-21-unknown-key", Location: ack.Location{Segment: "RXA", Sequence: o.Group, Field: 21},
		Code: ack.CodeUnknownKey, Severity: ack.Warning, App: ack.AppInvalidValue, Group: o.Group,
		Text: text,
	}
}

func firstLot(o *ingest.Order) string {
	if len(o.Lots) > 0 {
		return o.Lots[0]
	}
	return ""
}

// ParseDate reads the date part of an HL7 DTM (YYYYMMDD...); nil when it is not a valid date.
func ParseDate(s string) *time.Time {
	t, ok := parseDate(s)
	if !ok {
		return nil
	}
	return &t
}

// parseDate is ParseDate returning the date itself (no allocation): ok is false when ParseDate
// returns nil.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 8 {
		return time.Time{}, false
	}
	if y, m, d, valid, ok := eightDigitDate(s); ok {
		if !valid {
			return time.Time{}, false
		}
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), true
	}
	t, err := time.Parse("20060102", s[:8])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// eightDigitDate reads the first eight bytes of s (trimmed, at least eight long) when they are
// digits and the year is not 0 (nearly every date): what time.Parse("20060102") would decide,
// without its generality. ok is false when time.Parse must decide; valid says whether the date
// exists.
func eightDigitDate(s string) (y, m, d int, valid, ok bool) {
	y, yok := digits(s[0:4])
	m, mok := digits(s[4:6])
	d, dok := digits(s[6:8])
	if !yok || !mok || !dok || y < 1 {
		return 0, 0, 0, false, false
	}
	return y, m, d, m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m), true
}

// digits reads s, all ASCII digits, as a number; ok is false otherwise.
func digits(s string) (n int, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn is the number of days of month m of year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
