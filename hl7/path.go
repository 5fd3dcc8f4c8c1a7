package hl7

// Get reads one value by a terser-style path and returns it decoded, or ""
// when the path is malformed or the value absent. It is a convenience for
// tests, tools and the occasional lookup; code that reads many values should
// walk Find/Field/Component, which do not allocate.
//
// A path is SEG[(occurrence)]-FIELD[(repetition)][-COMPONENT[-SUBCOMPONENT]],
// every number starting at 1 and '.' accepted in place of '-':
//
//	PID-5-1       family name of the first PID
//	PID-3(2)-4    assigning authority of the second identifier in PID-3
//	OBX(3)-5      value of the third OBX
//	MSH-9-2       trigger event
//
// As in the HAPI terser, an omitted occurrence, repetition, component or
// subcomponent means the first one, so Get("RXA-5") is the code of RXA-5
// ("140"), not the whole coded element.
func (m *Message) Get(path string) string {
	sub, ok := m.lookup(path)
	if !ok {
		return ""
	}
	return sub.String()
}

// lookup resolves a Get path to a subcomponent.
func (m *Message) lookup(path string) (Subcomponent, bool) {
	if len(path) < 5 {
		return Subcomponent{}, false
	}
	p := pathReader{s: path[3:]}
	occ := p.paren()
	field := p.number(true)
	rep := p.paren()
	comp, sub := 1, 1
	if !p.done() {
		comp = p.number(true)
		if !p.done() {
			sub = p.number(true)
		}
	}
	if p.bad || !p.done() {
		return Subcomponent{}, false
	}
	seg, ok := m.Find(path[:3], occ)
	if !ok {
		return Subcomponent{}, false
	}
	return seg.Field(field).Rep(rep).Component(comp).Sub(sub), true
}

// pathReader reads the numbers of a Get path; any error sets bad.
type pathReader struct {
	s   string
	bad bool
}

func (p *pathReader) done() bool { return len(p.s) == 0 }

// paren reads an optional "(n)", returning 1 when absent.
func (p *pathReader) paren() int {
	if len(p.s) == 0 || p.s[0] != '(' {
		return 1
	}
	p.s = p.s[1:]
	n := p.number(false)
	if len(p.s) == 0 || p.s[0] != ')' {
		p.bad = true
		return 0
	}
	p.s = p.s[1:]
	return n
}

// number reads a positive decimal number, after a '-' or '.' when sep is set.
func (p *pathReader) number(sep bool) int {
	if sep {
		if len(p.s) == 0 || p.s[0] != '-' && p.s[0] != '.' {
			p.bad = true
			return 0
		}
		p.s = p.s[1:]
	}
	n, i := 0, 0
	for i < len(p.s) && i < 6 && p.s[i] >= '0' && p.s[i] <= '9' {
		n = n*10 + int(p.s[i]-'0')
		i++
	}
	if i == 0 || n == 0 {
		p.bad = true
		return 0
	}
	p.s = p.s[i:]
	return n
}
