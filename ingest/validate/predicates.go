package validate

// predicates applies the conditional usage of the Z22 data types (the Predicates of
// VXU-Z22_Constraints.xml for XCN_IZ, CWE_IZ, CE_IZ, EI_IZ, HD_IZ, XTN_IZ and XON_IZ): a component
// that becomes required because another one is, or is not, valued. v is the value, sep the
// separator of its parts (component or subcomponent).
func (r *run) predicates(c *elemCtx, dt dtRef, v []byte, sep byte) {
	switch dt {
	case dtXCNIZ, dtCWEIZ, dtCEIZ, dtEIIZ, dtHDIZ, dtXTNIZ, dtXONIZ:
	default:
		return
	}
	var p [14][]byte // p[k] is part k (1-based)
	rest := v
	for k := 1; k < len(p) && rest != nil; k++ {
		p[k], rest = cut(rest, sep)
	}
	has := func(k int) bool { return len(p[k]) > 0 }
	// need reports part k missing; the reason is built only then: before + prefix + after.
	need := func(k int, before, after string) {
		if has(k) {
			return
		}
		why := before
		if after != "" {
			why += prefix(c) + after
		}
		cd := compDef(dt, k)
		if cd == nil {
			return
		}
		save := c.loc
		if c.loc.Component == 0 {
			c.loc.Component = k
		} else {
			c.loc.Sub = k
		}
		r.problem(c, kCondMissing, cd, nil, why, false)
		c.loc = save
	}
	switch dt {
	case dtXCNIZ:
		if has(1) {
			need(9, "when ", "1 (ID Number) is valued")
			need(13, "when ", "1 (ID Number) is valued")
		} else if !has(2) && !has(3) {
			need(1, "when there is no family or given name", "")
		}
	case dtCWEIZ:
		if has(1) {
			need(3, "when ", "1 (Identifier) is valued")
		}
		if has(4) {
			need(6, "when ", "4 (Alternate Identifier) is valued")
		}
	case dtCEIZ:
		if has(4) {
			need(6, "when ", "4 (Alternate Identifier) is valued")
		}
	case dtEIIZ:
		if !has(2) && !has(3) {
			need(2, "when ", "3 (Universal ID) is empty")
		}
		if has(3) {
			need(4, "when ", "3 (Universal ID) is valued")
		}
	case dtHDIZ:
		if !has(1) && !has(2) {
			need(1, "when ", "2 (Universal ID) is empty")
		}
		if has(2) {
			need(3, "when ", "2 (Universal ID) is valued")
		}
	case dtXTNIZ:
		if string(p[2]) == "NET" {
			need(4, "when ", "2 is NET")
		} else if has(2) {
			need(7, "for a telephone (", "2 is not NET)")
		}
	case dtXONIZ:
		if has(10) {
			need(6, "when ", "10 (Organization Identifier) is valued")
			need(7, "when ", "10 (Organization Identifier) is valued")
		} else if !has(1) {
			need(10, "when ", "1 (Organization Name) is empty")
		}
	}
}

// prefix is how a finding names the parts of the element c is at: "ORC-12." for the components
// of a field, "PID-3.4." for the subcomponents of a component.
func prefix(c *elemCtx) string {
	s := c.loc.Segment + "-" + itoa(c.loc.Field) + "."
	if c.loc.Component > 0 {
		s += itoa(c.loc.Component) + "."
	}
	return s
}
