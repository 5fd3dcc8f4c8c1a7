package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// defaultPlanYAML is the checklist that ships with vaxgate (see DefaultPlan).
//
//go:embed default_plan.yaml
var defaultPlanYAML []byte

// DefaultPlanYAML returns the text of the default test plan, for registries that start their own
// from it.
func DefaultPlanYAML() []byte { return bytes.Clone(defaultPlanYAML) }

// DefaultPlan returns the test plan that ships with vaxgate: the CDC guide's use cases.
func DefaultPlan() *Plan {
	p, err := ParsePlan(defaultPlanYAML)
	if err != nil {
		panic("report: the embedded default plan does not load: " + err.Error()) // a build defect, caught by its test
	}
	return p
}

// Plan is a registry's certification checklist: the test cases a site must send to the test
// environment, and the readiness items the registry signs off before production.
type Plan struct {
	Name      string          `json:"name"`
	Version   string          `json:"version,omitempty"`
	Cases     []Case          `json:"cases"`
	Readiness []ReadinessItem `json:"readiness,omitempty"`
}

// Case is one test case: the conditions a message must meet to be an attempt at it, and the ACK
// codes it must get to pass.
type Case struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	Description string      `json:"description,omitempty"`
	ExpectACK   []string    `json:"expect_ack"`
	When        []Condition `json:"when"`
}

// ReadinessItem is one item of the production-readiness checklist the registry signs off.
type ReadinessItem struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Condition is one test a message must pass: on an HL7 field (any occurrence of the segment, any
// repetition of the field) or on a fact decoded from the message.
type Condition struct {
	Field   string   `json:"field,omitempty"` // SEG-F[-C[-S]], e.g. RXA-9 (= RXA-9-1)
	Fact    string   `json:"fact,omitempty"`  // one of FactNames()
	Equals  *string  `json:"equals,omitempty"`
	In      []string `json:"in,omitempty"`
	Present *bool    `json:"present,omitempty"`
	Matches string   `json:"matches,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`

	path fieldPath
	re   *regexp.Regexp
}

// PlanError is why a plan was refused: the line of the plan file and the reason.
type PlanError struct {
	Line int // 1-based; 0 when the error is not about one line
	Err  error
}

func (e *PlanError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("test plan line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("test plan: %v", e.Err)
}

func (e *PlanError) Unwrap() error { return e.Err }

// planErr builds a PlanError at line.
func planErr(line int, format string, args ...any) *PlanError {
	return &PlanError{Line: line, Err: fmt.Errorf(format, args...)}
}

// maxPlanSize bounds a plan file.
const maxPlanSize = 1 << 20

// LoadPlan reads a plan from r (see ParsePlan).
func LoadPlan(r io.Reader) (*Plan, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPlanSize+1))
	if err != nil {
		return nil, fmt.Errorf("report: read test plan: %w", err)
	}
	if len(b) > maxPlanSize {
		return nil, &PlanError{Err: fmt.Errorf("the file is larger than %d bytes", maxPlanSize)}
	}
	return ParsePlan(b)
}

// The YAML shape of a plan, decoded strictly: a key that is not here is refused with its line.
type planYAML struct {
	Name      string          `yaml:"name"`
	Version   string          `yaml:"version"`
	Cases     []caseYAML      `yaml:"cases"`
	Readiness []readinessYAML `yaml:"readiness"`
}

type caseYAML struct {
	ID          string          `yaml:"id"`
	Title       string          `yaml:"title"`
	Description string          `yaml:"description"`
	ExpectACK   yaml.Node       `yaml:"expect_ack"`
	When        []conditionYAML `yaml:"when"`
}

type conditionYAML struct {
	Field   string   `yaml:"field"`
	Fact    string   `yaml:"fact"`
	Equals  *string  `yaml:"equals"`
	In      []string `yaml:"in"`
	Present *bool    `yaml:"present"`
	Matches string   `yaml:"matches"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
}

type readinessYAML struct {
	ID    string `yaml:"id"`
	Title string `yaml:"title"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ParsePlan reads a plan from YAML. It refuses, with the line and the reason, a plan that is not
// valid YAML, has keys it does not know, names an HL7 field of a segment a VXU does not have or
// beyond that segment's fields, names an unknown fact, gives a condition no test or two, or
// repeats an id.
func ParsePlan(data []byte) (*Plan, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, &PlanError{Err: errors.New("the file is empty")}
	}
	var y planYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		return nil, yamlError(err)
	}
	doc := root.Content[0]
	p := &Plan{Name: strings.TrimSpace(y.Name), Version: y.Version}
	if p.Name == "" {
		return nil, planErr(doc.Line, "the plan has no name")
	}
	casesNode := child(doc, "cases")
	if len(y.Cases) == 0 {
		return nil, planErr(lineOf(casesNode, doc), "the plan has no cases")
	}
	seen := map[string]int{}
	for i, cy := range y.Cases {
		cn := item(casesNode, i)
		c, err := parseCase(cy, cn)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[c.ID]; dup {
			return nil, planErr(lineOf(child(cn, "id"), cn), "case id %q is already used on line %d", c.ID, prev)
		}
		seen[c.ID] = lineOf(child(cn, "id"), cn)
		p.Cases = append(p.Cases, c)
	}
	readyNode := child(doc, "readiness")
	for i, ry := range y.Readiness {
		rn := item(readyNode, i)
		id := strings.TrimSpace(ry.ID)
		if !idPattern.MatchString(id) {
			return nil, planErr(lineOf(child(rn, "id"), rn), "readiness item id %q must be 1 to 64 lowercase letters, digits, '.', '_' or '-'", id)
		}
		if prev, dup := seen[id]; dup {
			return nil, planErr(lineOf(child(rn, "id"), rn), "id %q is already used on line %d", id, prev)
		}
		seen[id] = lineOf(child(rn, "id"), rn)
		title := strings.TrimSpace(ry.Title)
		if title == "" {
			return nil, planErr(lineOf(rn, readyNode), "readiness item %q has no title", id)
		}
		p.Readiness = append(p.Readiness, ReadinessItem{ID: id, Title: title})
	}
	return p, nil
}

func parseCase(cy caseYAML, cn *yaml.Node) (Case, error) {
	c := Case{ID: strings.TrimSpace(cy.ID), Title: strings.TrimSpace(cy.Title), Description: strings.TrimSpace(cy.Description)}
	if !idPattern.MatchString(c.ID) {
		return c, planErr(lineOf(child(cn, "id"), cn), "case id %q must be 1 to 64 lowercase letters, digits, '.', '_' or '-'", c.ID)
	}
	if c.Title == "" {
		return c, planErr(lineOf(cn, nil), "case %q has no title", c.ID)
	}
	acks, err := parseACKs(&cy.ExpectACK)
	if err != nil {
		return c, planErr(lineOf(child(cn, "expect_ack"), cn), "case %q: %v", c.ID, err)
	}
	c.ExpectACK = acks
	whenNode := child(cn, "when")
	if len(cy.When) == 0 {
		return c, planErr(lineOf(whenNode, cn), "case %q has no conditions (when)", c.ID)
	}
	for j, wy := range cy.When {
		wn := item(whenNode, j)
		cond, err := parseCondition(wy, wn)
		if err != nil {
			return c, err
		}
		c.When = append(c.When, cond)
	}
	return c, nil
}

func parseACKs(n *yaml.Node) ([]string, error) {
	var codes []string
	switch n.Kind {
	case 0:
		return nil, errors.New("expect_ack is missing: name the ACK code(s) the message must get (AA, AE or AR)")
	case yaml.ScalarNode:
		codes = []string{n.Value}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode {
				return nil, errors.New("expect_ack must be an ACK code or a list of ACK codes")
			}
			codes = append(codes, e.Value)
		}
	default:
		return nil, errors.New("expect_ack must be an ACK code or a list of ACK codes")
	}
	if len(codes) == 0 {
		return nil, errors.New("expect_ack is empty")
	}
	for i, c := range codes {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "AA" && c != "AE" && c != "AR" {
			return nil, fmt.Errorf("expect_ack %q is not an ACK code (AA, AE or AR)", codes[i])
		}
		codes[i] = c
	}
	return codes, nil
}

func parseCondition(wy conditionYAML, wn *yaml.Node) (Condition, error) {
	line := lineOf(wn, nil)
	c := Condition{Field: strings.TrimSpace(wy.Field), Fact: strings.TrimSpace(wy.Fact), Equals: wy.Equals, In: wy.In,
		Present: wy.Present, Matches: wy.Matches, Min: wy.Min, Max: wy.Max}
	switch {
	case c.Field == "" && c.Fact == "":
		return c, planErr(line, "a condition needs a field (e.g. RXA-9) or a fact (e.g. administered_count)")
	case c.Field != "" && c.Fact != "":
		return c, planErr(line, "a condition has either a field or a fact, not both")
	}
	tests := 0
	for _, set := range []bool{c.Equals != nil, c.In != nil, c.Present != nil, c.Matches != "", c.Min != nil || c.Max != nil} {
		if set {
			tests++
		}
	}
	if tests != 1 {
		return c, planErr(line, "a condition needs exactly one test: equals, in, present, matches, or min/max (it has %d)", tests)
	}
	if c.In != nil && len(c.In) == 0 {
		return c, planErr(lineOf(child(wn, "in"), wn), "in: the list is empty")
	}
	if c.Matches != "" {
		re, err := regexp.Compile(`^(?:` + c.Matches + `)$`)
		if err != nil {
			return c, planErr(lineOf(child(wn, "matches"), wn), "matches: %v", err)
		}
		c.re = re
	}
	if c.Field != "" {
		p, err := parseFieldPath(c.Field)
		if err != nil {
			return c, planErr(lineOf(child(wn, "field"), wn), "%v", err)
		}
		c.path = p
		if c.Min != nil || c.Max != nil {
			return c, planErr(line, "min/max apply to facts; for field %s use equals, in, present or matches", c.Field)
		}
		return c, nil
	}
	fact, ok := factByName[c.Fact]
	if !ok {
		return c, planErr(lineOf(child(wn, "fact"), wn), "unknown fact %q (known: %s)", c.Fact, strings.Join(FactNames(), ", "))
	}
	if c.Equals != nil {
		if _, err := strconv.ParseFloat(*c.Equals, 64); err != nil {
			return c, planErr(lineOf(child(wn, "equals"), wn), "fact %s is a number: equals %q is not one", c.Fact, *c.Equals)
		}
	}
	if c.In != nil || c.Matches != "" || (c.Present != nil && !fact.optional) {
		return c, planErr(line, "fact %s is a number: test it with min, max or equals", c.Fact)
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		return c, planErr(line, "min %v is greater than max %v", *c.Min, *c.Max)
	}
	return c, nil
}

// yamlError turns a YAML library error into a PlanError with the line it names.
func yamlError(err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ":"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, strings.TrimSpace(tail)
			}
		}
	}
	msg = strings.Replace(msg, "not found in type report.", "is not known in ", 1)
	msg = strings.NewReplacer("report.planYAML", "the plan", "report.caseYAML", "a case",
		"report.conditionYAML", "a condition", "report.readinessYAML", "a readiness item").Replace(msg)
	return &PlanError{Line: line, Err: errors.New(msg)}
}

// child returns the value node of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// item returns the i-th element of sequence n, or nil.
func item(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// lineOf is n's line, else fallback's, else 0.
func lineOf(n, fallback *yaml.Node) int {
	if n != nil {
		return n.Line
	}
	if fallback != nil {
		return fallback.Line
	}
	return 0
}

// fieldPath is a parsed condition field: segment, field, component, subcomponent (1-based).
type fieldPath struct {
	seg              string
	field, comp, sub int
}

// vxuSegments are the segments of a VXU^V04 (Z22) with their number of fields in HL7 2.5.1.
var vxuSegments = map[string]int{
	"MSH": 21, "SFT": 6, "PID": 39, "PD1": 21, "NK1": 41, "PV1": 52, "PV2": 49, "GT1": 57,
	"IN1": 53, "IN2": 72, "IN3": 28, "ORC": 31, "TQ1": 14, "TQ2": 10, "RXA": 28, "RXR": 6,
	"OBX": 25, "NTE": 4,
}

// parseFieldPath reads SEG-F[-C[-S]] ('.' may separate too).
func parseFieldPath(s string) (fieldPath, error) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '.' })
	if len(parts) < 2 || len(parts) > 4 {
		return fieldPath{}, fmt.Errorf("field %q is not SEG-FIELD[-COMPONENT[-SUBCOMPONENT]] (e.g. RXA-9 or PID-3-5)", s)
	}
	p := fieldPath{seg: strings.ToUpper(parts[0]), comp: 1, sub: 1}
	max, ok := vxuSegments[p.seg]
	if !ok {
		known := make([]string, 0, len(vxuSegments))
		for k := range vxuSegments {
			known = append(known, k)
		}
		slices.Sort(known)
		return fieldPath{}, fmt.Errorf("field %q: a VXU has no segment %s (known: %s)", s, parts[0], strings.Join(known, " "))
	}
	nums := []*int{&p.field, &p.comp, &p.sub}
	for i, part := range parts[1:] {
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 || n > 99 {
			return fieldPath{}, fmt.Errorf("field %q: %q is not a position from 1 to 99", s, part)
		}
		*nums[i] = n
	}
	if p.field > max {
		return fieldPath{}, fmt.Errorf("field %q: %s has %d fields in HL7 2.5.1", s, p.seg, max)
	}
	return p, nil
}
