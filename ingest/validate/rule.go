package validate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vaxgate/vaxgate/ack"
)

// Ignore is the severity that turns a rule off: a deployment or sender override of Ignore drops
// the rule's findings.
const Ignore ack.Severity = "X"

// The rule families, in the order the catalogue document lists them.
const (
	FamilyStructure = "structure" // segments: presence, order, repetition of the Z22 structure
	FamilyUsage     = "usage"     // fields and components: R/RE/C/X usage, cardinality, conditions
	FamilyDatatype  = "datatype"  // formats of dates, numbers; lengths
	FamilyCode      = "code"      // coded values against their value sets
	FamilyVaccine   = "vaccine"   // CVX, NDC, MVX, products, funding, VIS, refusals, 998
	FamilyDate      = "date"      // dates that are valid but illogical
	FamilyQuality   = "quality"   // plausibility of names, ages, addresses, phones, lots
)

// The scopes of a rule (see Rule.Scope).
const (
	ScopeMessage     = "message"
	ScopeVaccination = "vaccination"
	ScopeSegment     = "segment"
)

// Families lists the rule families in catalogue order.
var Families = []string{FamilyStructure, FamilyUsage, FamilyDatatype, FamilyCode, FamilyVaccine, FamilyDate, FamilyQuality}

// Rule is one check of the catalogue. Its ID is stable: configuration, ACK findings and the
// archive refer to it.
type Rule struct {
	ID          string       // stable identifier, e.g. "rxa-3-future"
	Family      string       // one of Families
	Description string       // what the rule checks, for the catalogue and registry staff
	Severity    ack.Severity // default severity (ERR-4); deployments and senders may override it
	Code        ack.Code     // HL7 table 0357 code reported in ERR-3
	App         ack.AppCode  // CDC table 0533 code reported in ERR-5 (AppNone: empty)
	// Message is the plain-language text reported in ERR-8. It may name the place ({at}, e.g.
	// "RXA-5"), the element ({name}), the value found ({value}) and details ({detail}); each
	// finding fills them in.
	Message   string
	Location  string // where the rule looks, e.g. "RXA-3" or "any coded field"
	Reference string // where the requirement comes from: Z22 profile, constraint ID, CDC guide, MQE
	// Scope says what an error of the rule rejects: ScopeMessage (the whole message: the patient
	// or the message itself is unusable), ScopeVaccination (the one vaccination, its ORC/RXA
	// group), or ScopeSegment (whichever the segment it is found in belongs to).
	Scope string

	idx   int  // position in catalogue, for the severity tables
	fixed bool // always an error: a limit, or a value the registry cannot store (no override)
}

// catalogue holds every rule, in definition order; Rules returns it sorted by ID.
var catalogue []*Rule

// def registers a rule. It runs during package initialisation only.
func def(r Rule) *Rule {
	p := &r
	p.idx = len(catalogue)
	catalogue = append(catalogue, p)
	return p
}

// Rules returns the catalogue, sorted by ID.
func Rules() []Rule {
	out := make([]Rule, len(catalogue))
	for i, r := range catalogue {
		out[i] = *r
	}
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ruleByID finds a rule; nil when there is none.
func ruleByID(id string) *Rule {
	for _, r := range catalogue {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// ParseSeverity reads a severity as configuration files write it: E, W, I or X (case-insensitive),
// or the words error, warning, information (info), ignore (off).
func ParseSeverity(s string) (ack.Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "e", "error":
		return ack.Error, nil
	case "w", "warning", "warn":
		return ack.Warning, nil
	case "i", "information", "info":
		return ack.Information, nil
	case "x", "ignore", "off":
		return Ignore, nil
	}
	return "", fmt.Errorf("validate: severity %q: want E, W, I or X (ignore)", s)
}

func validSeverity(s ack.Severity) bool {
	return s == ack.Error || s == ack.Warning || s == ack.Information || s == Ignore
}
