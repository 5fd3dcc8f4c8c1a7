// Package z22 derives the validator's compact Go tables from the NIST machine-readable
// conformance profile of the CDC VXU^V04 Z22 message (Implementation Guide for Immunization
// Messaging, Release 1.5): the message structure (segment groups, order, usage, cardinality), the
// fields of every segment the structure uses (usage, cardinality, lengths, data type, value-set
// binding), the data types those fields use down to subcomponents, and the value sets that can be
// checked from the profile alone.
//
// The project does not ship the NIST XML: Generate reads it from ../shared/profiles when a
// developer runs `go generate ./ingest/validate`, and writes z22_tables.go, the project's own
// derived table. The validate package's tests call Generate again to prove the committed file is
// current.
package z22

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The profile files Generate reads.
const (
	ProfileFile  = "VXU-Z22_Profile.xml"
	ValueSetFile = "VXU-Z22_ValueSetLibrary.xml"
)

// externalValueSets are bound in the profile but checked against the CDC code sets of
// ingest/codes, which follow the CDC's publications, rather than against the profile's 2016
// snapshot of them.
var externalValueSets = map[string]bool{
	"CVX": true, "MVX": true, "NDC_Use": true, "NDC_Sale": true,
	"PHVS_VISBarcodes_IIS": true, "PHVS_VISVaccines_IIS": true,
}

// extraValueSets are not bound to a field in the profile but named by its constraints (the OBX-5
// value sets that depend on OBX-3) or needed by the validator's own rules.
var extraValueSets = []string{
	"HL70005", // race, the legacy coding of PID-10 that senders still use
	"HL70064_IZ",
	"HL70396_IZ",
	"PHVS_ImmunizationFundingSource_IIS",
	"PHVS_HistoryOfDiseaseAsEvidenceOfImmunity_IIS",
	"PHVS_SerologicalEvidenceOfImmunity_IIS",
	"PHVS_VaccinationContraindication_IIS",
	"PHVS_VaccinationReaction_IIS",
	"PHVS_VaccinationSpecialIndications_IIS",
	"PHVS_ImmunizationScheduleIdentifier_IIS",
}

// extraDatatypes are the data types OBX-5 takes through the profile's dynamic mapping on OBX-2.
var extraDatatypes = []string{"CE_IZ", "CWE", "CNE", "DT", "DTM", "TS", "ST", "TX", "FT", "NM", "ID", "IS", "SI"}

type xProfile struct {
	Meta     xMeta       `xml:"MetaData"`
	Messages []xMessage  `xml:"Messages>Message"`
	Segments []xSegment  `xml:"Segments>Segment"`
	Types    []xDatatype `xml:"Datatypes>Datatype"`
}

type xMeta struct {
	Name              string `xml:"Name,attr"`
	OrgName           string `xml:"OrgName,attr"`
	Version           string `xml:"Version,attr"`
	Date              string `xml:"Date,attr"`
	SpecificationName string `xml:"SpecificationName,attr"`
}

type xMessage struct {
	Identifier string  `xml:"Identifier,attr"`
	StructID   string  `xml:"StructID,attr"`
	Children   []xNode `xml:",any"`
}

// xNode is a Segment reference or a Group of the message structure.
type xNode struct {
	XMLName  xml.Name
	Ref      string  `xml:"Ref,attr"`
	ID       string  `xml:"ID,attr"`
	Usage    string  `xml:"Usage,attr"`
	Min      string  `xml:"Min,attr"`
	Max      string  `xml:"Max,attr"`
	Children []xNode `xml:",any"`
}

type xSegment struct {
	ID     string   `xml:"ID,attr"`
	Name   string   `xml:"Name,attr"`
	Desc   string   `xml:"Description,attr"`
	Fields []xField `xml:"Field"`
}

type xField struct {
	Name      string `xml:"Name,attr"`
	Usage     string `xml:"Usage,attr"`
	Min       string `xml:"Min,attr"`
	Max       string `xml:"Max,attr"`
	Datatype  string `xml:"Datatype,attr"`
	MinLength string `xml:"MinLength,attr"`
	MaxLength string `xml:"MaxLength,attr"`
	Binding   string `xml:"Binding,attr"`
}

type xDatatype struct {
	ID    string   `xml:"ID,attr"`
	Name  string   `xml:"Name,attr"`
	Desc  string   `xml:"Description,attr"`
	Comps []xField `xml:"Component"`
}

type xLibrary struct {
	Meta         xMeta      `xml:"MetaData"`
	NoValidation []string   `xml:"NoValidation>BindingIdentifier"`
	Sets         []xVSGroup `xml:"ValueSetDefinitions"`
}

type xVSGroup struct {
	Defs []xValueSet `xml:"ValueSetDefinition"`
}

type xValueSet struct {
	ID            string   `xml:"BindingIdentifier,attr"`
	Name          string   `xml:"Name,attr"`
	Extensibility string   `xml:"Extensibility,attr"`
	Values        []xValue `xml:"ValueElement"`
}

type xValue struct {
	Value string `xml:"Value,attr"`
}

// Generate reads the Z22 profile and value-set library in dir and returns the gofmt-ed Go source
// of z22_tables.go for package validate.
func Generate(dir string) ([]byte, error) {
	var prof xProfile
	if err := readXML(filepath.Join(dir, ProfileFile), &prof); err != nil {
		return nil, err
	}
	var lib xLibrary
	if err := readXML(filepath.Join(dir, ValueSetFile), &lib); err != nil {
		return nil, err
	}
	g := &gen{
		segs:     map[string]*xSegment{},
		types:    map[string]*xDatatype{},
		vsets:    map[string]*xValueSet{},
		noValid:  map[string]bool{},
		usedType: map[string]bool{},
		usedVS:   map[string]bool{},
	}
	for i := range prof.Segments {
		g.segs[prof.Segments[i].ID] = &prof.Segments[i]
	}
	for i := range prof.Types {
		g.types[prof.Types[i].ID] = &prof.Types[i]
	}
	for _, s := range lib.Sets {
		for i := range s.Defs {
			if _, dup := g.vsets[s.Defs[i].ID]; !dup {
				g.vsets[s.Defs[i].ID] = &s.Defs[i]
			}
		}
	}
	for _, id := range lib.NoValidation {
		g.noValid[strings.TrimSpace(id)] = true
	}
	var msg *xMessage
	for i := range prof.Messages {
		if prof.Messages[i].Identifier == "Z22" {
			msg = &prof.Messages[i]
		}
	}
	if msg == nil {
		return nil, fmt.Errorf("z22: %s: no message with identifier Z22", ProfileFile)
	}
	if err := g.structure(msg.Children, -1); err != nil {
		return nil, err
	}
	for _, dt := range extraDatatypes {
		if err := g.useType(dt); err != nil {
			return nil, err
		}
	}
	for _, vs := range extraValueSets {
		if !g.checkable(vs) {
			return nil, fmt.Errorf("z22: value set %s is missing or cannot be checked", vs)
		}
		g.usedVS[vs] = true
	}
	return g.emit(prof.Meta, lib.Meta)
}

func readXML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("z22: %w", err)
	}
	if err := xml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("z22: %s: %w", filepath.Base(path), err)
	}
	return nil
}

type node struct {
	seg    string // profile segment ID, "" for a group
	group  string
	usage  string
	min    int
	max    int // -1: unbounded
	parent int
	end    int // groups: index after the last descendant
}

type gen struct {
	segs     map[string]*xSegment
	types    map[string]*xDatatype
	vsets    map[string]*xValueSet
	noValid  map[string]bool
	nodes    []node
	segOrder []string // profile segment IDs in first-use order
	usedType map[string]bool
	usedVS   map[string]bool
}

func (g *gen) structure(children []xNode, parent int) error {
	for _, c := range children {
		min, err := card(c.Min)
		if err != nil {
			return err
		}
		max, err := card(c.Max)
		if err != nil {
			return err
		}
		switch c.XMLName.Local {
		case "Segment":
			s, ok := g.segs[c.Ref]
			if !ok {
				return fmt.Errorf("z22: segment %q is not defined", c.Ref)
			}
			g.nodes = append(g.nodes, node{seg: c.Ref, usage: c.Usage, min: min, max: max, parent: parent})
			if !slices.Contains(g.segOrder, c.Ref) {
				g.segOrder = append(g.segOrder, c.Ref)
				for _, f := range s.Fields {
					if err := g.useType(f.Datatype); err != nil {
						return err
					}
					g.useBinding(f.Binding)
				}
			}
		case "Group":
			at := len(g.nodes)
			g.nodes = append(g.nodes, node{group: c.ID, usage: c.Usage, min: min, max: max, parent: parent})
			if err := g.structure(c.Children, at); err != nil {
				return err
			}
			g.nodes[at].end = len(g.nodes)
		default:
			return fmt.Errorf("z22: unexpected element %q in the message structure", c.XMLName.Local)
		}
	}
	return nil
}

func card(s string) (int, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("z22: cardinality %q: %w", s, err)
	}
	return n, nil
}

func (g *gen) useType(id string) error {
	if id == "" || id == "varies" || g.usedType[id] {
		return nil
	}
	dt, ok := g.types[id]
	if !ok {
		return fmt.Errorf("z22: data type %q is not defined", id)
	}
	g.usedType[id] = true
	for _, c := range dt.Comps {
		if err := g.useType(c.Datatype); err != nil {
			return err
		}
		g.useBinding(c.Binding)
	}
	return nil
}

func (g *gen) useBinding(b string) {
	for _, id := range strings.Split(b, ":") {
		if g.checkable(id) {
			g.usedVS[id] = true
		}
	}
}

// checkable reports whether a value set can be checked from the profile alone: it is defined,
// holds codes, is closed, is not on the library's no-validation list, is not one of the CDC code
// sets the validator takes from ingest/codes, and lists literal codes rather than patterns
// ("10 ...19", "Q<integer>D").
func (g *gen) checkable(id string) bool {
	vs, ok := g.vsets[id]
	if !ok || id == "" || externalValueSets[id] || g.noValid[id] || len(vs.Values) == 0 ||
		strings.EqualFold(vs.Extensibility, "Open") {
		return false
	}
	for _, v := range vs.Values {
		if strings.Contains(v.Value, "...") || strings.ContainsAny(v.Value, "<>") && len(v.Value) > 2 {
			return false
		}
	}
	return true
}

// ident turns a profile ID into a Go identifier suffix: "HL70001_IZ" → "HL70001IZ",
// "MSH_IZ 1_5_Z22" → "MSH".
func ident(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// uniqueIdents fails when two profile IDs would become the same Go identifier.
func uniqueIdents(ids []string) error {
	seen := map[string]string{}
	for _, id := range ids {
		if prev, dup := seen[ident(id)]; dup {
			return fmt.Errorf("z22: %q and %q both become identifier %s", prev, id, ident(id))
		}
		seen[ident(id)] = id
	}
	return nil
}

func usageConst(u string) string {
	switch u {
	case "R", "RE", "C", "X", "O":
		return "u" + u
	case "B", "W":
		return "uO" // backward-compatible and withdrawn elements are optional
	}
	return "uO"
}

func (g *gen) emit(pm, lm xMeta) ([]byte, error) {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("// Code generated by ingest/validate/gen/z22tables from the NIST conformance profile; DO NOT EDIT.\n")
	p("// Source: %s %s %s (%s), %s %s %s.\n\n", pm.OrgName, pm.Name, pm.Version, pm.Date, lm.Name, lm.Version, lm.Date)
	p("package validate\n\n")

	// Data types: sorted by ID for a stable numbering.
	types := make([]string, 0, len(g.usedType))
	for id := range g.usedType {
		types = append(types, id)
	}
	slices.Sort(types)
	vsets := make([]string, 0, len(g.usedVS))
	for id := range g.usedVS {
		vsets = append(vsets, id)
	}
	slices.Sort(vsets)
	if err := uniqueIdents(types); err != nil {
		return nil, err
	}
	if err := uniqueIdents(vsets); err != nil {
		return nil, err
	}
	segName := func(id string) string { return g.segs[id].Name }

	p("// Segment definitions, in the order the Z22 structure first uses them.\nconst (\n")
	for i, id := range g.segOrder {
		if i == 0 {
			p("\tseg%s segRef = iota\n", segName(id))
		} else {
			p("\tseg%s\n", segName(id))
		}
	}
	p("\tnumSegDefs\n)\n\n")

	p("// Data types of the profile, by profile ID.\nconst (\n")
	for i, id := range types {
		if i == 0 {
			p("\tdt%s dtRef = iota + 1\n", ident(id))
		} else {
			p("\tdt%s\n", ident(id))
		}
	}
	p("\tnumDatatypes\n)\n\n")

	p("// Value sets the profile lets the validator check, by binding identifier.\nconst (\n")
	for i, id := range vsets {
		if i == 0 {
			p("\tvs%s vsRef = iota + 1\n", ident(id))
		} else {
			p("\tvs%s\n", ident(id))
		}
	}
	p("\tnumValueSets\n)\n\n")

	p("// z22Structure is the VXU_V04 message structure in pre-order: segments and groups with their\n")
	p("// usage and cardinality (max -1 = unbounded), the index of the enclosing group (-1 at the top)\n")
	p("// and, for a group, the index after its last descendant.\n")
	p("var z22Structure = [...]structNode{\n")
	for _, n := range g.nodes {
		if n.seg != "" {
			p("\t{seg: seg%s, usage: %s, min: %d, max: %d, parent: %d},\n", segName(n.seg), usageConst(n.usage), n.min, n.max, n.parent)
		} else {
			p("\t{group: %q, usage: %s, min: %d, max: %d, parent: %d, end: %d},\n", n.group, usageConst(n.usage), n.min, n.max, n.parent, n.end)
		}
	}
	p("}\n\n")

	p("// z22Segments defines the fields of every segment of the structure.\n")
	p("var z22Segments = [numSegDefs]segDef{\n")
	for _, id := range g.segOrder {
		s := g.segs[id]
		p("\tseg%s: {name: %q, profile: %q, desc: %q, fields: []elemDef{\n", s.Name, s.Name, s.ID, s.Desc)
		for _, f := range s.Fields {
			if err := g.emitElem(&b, "\t\t", f, true); err != nil {
				return nil, fmt.Errorf("z22: %s: %w", s.ID, err)
			}
		}
		p("\t}},\n")
	}
	p("}\n\n")

	p("// z22Datatypes defines the components of every data type the fields use.\n")
	p("var z22Datatypes = [numDatatypes]dtDef{\n")
	for _, id := range types {
		dt := g.types[id]
		if len(dt.Comps) == 0 {
			p("\tdt%s: {id: %q, base: %q},\n", ident(id), id, dt.Name)
			continue
		}
		p("\tdt%s: {id: %q, base: %q, comps: []elemDef{\n", ident(id), id, dt.Name)
		for _, c := range dt.Comps {
			if err := g.emitElem(&b, "\t\t", c, false); err != nil {
				return nil, fmt.Errorf("z22: %s: %w", id, err)
			}
		}
		p("\t}},\n")
	}
	p("}\n\n")

	p("// z22ValueSets holds the codes of each checkable value set, sorted for binary search.\n")
	p("var z22ValueSets = [numValueSets]valueSet{\n")
	for _, id := range vsets {
		vs := g.vsets[id]
		codes := make([]string, 0, len(vs.Values))
		for _, v := range vs.Values {
			if !slices.Contains(codes, v.Value) {
				codes = append(codes, v.Value)
			}
		}
		slices.Sort(codes)
		p("\tvs%s: {id: %q, name: %q, codes: []string{", ident(id), id, strings.TrimSpace(vs.Name))
		for i, c := range codes {
			if i > 0 {
				p(", ")
			}
			p("%q", c)
		}
		p("}},\n")
	}
	p("}\n")

	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("z22: format generated source: %w", err)
	}
	return out, nil
}

func (g *gen) emitElem(b *bytes.Buffer, indent string, f xField, field bool) error {
	dt := "0"
	if f.Datatype != "" && f.Datatype != "varies" {
		dt = "dt" + ident(f.Datatype)
	}
	vs := "0"
	for _, id := range strings.Split(f.Binding, ":") {
		if g.usedVS[id] {
			vs = "vs" + ident(id)
			break
		}
	}
	minLen, err := length(f.MinLength)
	if err != nil {
		return err
	}
	maxLen, err := length(f.MaxLength)
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "%s{name: %q, usage: %s", indent, f.Name, usageConst(f.Usage))
	if field {
		min, err := card(f.Min)
		if err != nil {
			return err
		}
		max, err := card(f.Max)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, ", min: %d, max: %d", min, max)
	}
	fmt.Fprintf(b, ", minLen: %d, maxLen: %d, dt: %s, vs: %s},\n", minLen, maxLen, dt, vs)
	return nil
}

func length(s string) (int, error) {
	if s == "" || s == "*" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("length %q: %w", s, err)
	}
	return n, nil
}
