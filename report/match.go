package report

import (
	"slices"
	"strconv"

	"github.com/vaxgate/vaxgate/hl7"
)

// Match appends to dst the indexes (into p.Cases) of the cases message m is an attempt at: those
// whose every condition it meets. f are m's facts (Extract).
func (p *Plan) Match(dst []int, m *hl7.Message, f *Facts) []int {
	for i := range p.Cases {
		if p.Cases[i].matches(m, f) {
			dst = append(dst, i)
		}
	}
	return dst
}

// Passes reports whether an ACK code is one the case expects.
func (c *Case) Passes(ackCode string) bool { return slices.Contains(c.ExpectACK, ackCode) }

func (c *Case) matches(m *hl7.Message, f *Facts) bool {
	for i := range c.When {
		if !c.When[i].holds(m, f) {
			return false
		}
	}
	return true
}

// holds evaluates the condition. A field condition looks at every occurrence of the segment and
// every repetition of the field: equals, in and matches hold when one value does, present: true
// when one value is not empty, present: false when none is. A message without the segment has
// one empty value.
func (c *Condition) holds(m *hl7.Message, f *Facts) bool {
	if c.Fact != "" {
		return c.holdsFact(f)
	}
	anyValue := false
	found := false
	for occ := 1; ; occ++ {
		seg, ok := m.Find(c.path.seg, occ)
		if !ok {
			break
		}
		found = true
		field := seg.Field(c.path.field)
		n := max(field.NumReps(), 1)
		for r := 1; r <= n; r++ {
			v := field.Rep(r).Component(c.path.comp).Sub(c.path.sub)
			if !v.IsEmpty() {
				anyValue = true
			}
			if c.Present == nil && c.test(v.String()) {
				return true
			}
		}
	}
	if c.Present != nil {
		return *c.Present == anyValue
	}
	if !found {
		return c.test("")
	}
	return false
}

// test applies equals, in or matches to one value.
func (c *Condition) test(v string) bool {
	switch {
	case c.Equals != nil:
		return v == *c.Equals
	case c.In != nil:
		return slices.Contains(c.In, v)
	case c.re != nil:
		return c.re.MatchString(v)
	}
	return false
}

func (c *Condition) holdsFact(f *Facts) bool {
	v, known := factByName[c.Fact].get(f)
	if c.Present != nil {
		return *c.Present == known
	}
	if !known {
		return false
	}
	if c.Equals != nil {
		want, err := strconv.ParseFloat(*c.Equals, 64)
		return err == nil && v == want
	}
	if c.Min != nil && v < *c.Min {
		return false
	}
	if c.Max != nil && v > *c.Max {
		return false
	}
	return true
}
