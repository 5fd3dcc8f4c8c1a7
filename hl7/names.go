package hl7

import "math/bits"

// segmentNames holds the standard HL7 v2 segment names (v2.5.1 and the most
// common later ones), sorted, three characters each. Segment.Name returns
// substrings of this constant so that naming a segment allocates nothing.
const segmentNames = "" +
	"ABSACCADDADJAFFAIGAILAIPAISAL1APRARQARVAUTBHSBLCBLGBPOBPXBTSBTXBUICDMCDOCERCM0CM1CM2CNSCONCSPCSR" +
	"CSSCTDCTIDB1DG1DMIDONDRGDSCDSPECDECREDUEQPEQUERQERREVNFACFHSFT1FTSGOLGP1GP2GT1IAMIIMILTIN1IN2IN3" +
	"INVIPCIPRISDITMIVCIVTLANLCCLCHLDPLOCLRLMFAMFEMFIMRGMSAMSHNCKNDSNK1NPUNSCNSTNTEOBROBXODSODTOM1OM2" +
	"OM3OM4OM5OM6OM7ORCORGOVRPACPCEPCRPD1PDAPDCPEOPESPIDPKGPMTPR1PRAPRBPRCPRDPRTPSGPSHPSLPSSPTHPV1PV2" +
	"PYEQAKQIDQPDQRDQRFQRIRCPRDFRDTRELRF1RFIRGSRMIROLRQ1RQDRXARXCRXDRXERXGRXORXRRXVSACSCDSCHSCPSDDSFT" +
	"SGHSGTSHPSIDSLTSPMSTFSTZTCCTCDTQ1TQ2TXAUACUB1UB2URDURSVARVND"

// nameCode packs a three-byte segment name into an integer for cheap comparison.
func nameCode(a, b, c byte) uint32 { return uint32(a)<<16 | uint32(b)<<8 | uint32(c) }

// The standard names as a table, so that recognising a name costs a couple of
// loads rather than a search: for every pair of leading letters, stdBits has
// bit i set when the name ending in character i (0-9 then A-Z, which is also
// their order in segmentNames) is standard, and stdBase is the position in
// segmentNames (in names) of the first standard name with those letters.
var stdBits, stdBase = standardTables()

func standardTables() (bitsOut *[26 * 26]uint64, base *[26 * 26]uint16) {
	bitsOut, base = new([26 * 26]uint64), new([26 * 26]uint16)
	for i := len(segmentNames)/3 - 1; i >= 0; i-- { // backwards: base ends at the first name
		s := segmentNames[i*3 : i*3+3]
		p, bit, ok := stdSlot(s[0], s[1], s[2])
		if !ok {
			panic("hl7: segmentNames holds a name the table cannot represent: " + s)
		}
		bitsOut[p] |= 1 << bit
		base[p] = uint16(i)
	}
	return bitsOut, base
}

// stdSlot returns where a name would be in stdBits: ok is false for names no
// standard name can match (a digit or other byte among the first two).
func stdSlot(a, b, c byte) (p int, bit uint, ok bool) {
	a -= 'A'
	b -= 'A'
	if a >= 26 || b >= 26 {
		return 0, 0, false
	}
	switch {
	case c >= '0' && c <= '9':
		bit = uint(c - '0')
	case c >= 'A' && c <= 'Z':
		bit = uint(c-'A') + 10
	default:
		return 0, 0, false
	}
	return int(a)*26 + int(b), bit, true
}

// standardIndex returns the position (in names) of code in segmentNames, or -1.
func standardIndex(code uint32) int {
	p, bit, ok := stdSlot(byte(code>>16), byte(code>>8), byte(code))
	if !ok {
		return -1
	}
	w := stdBits[p]
	if w>>bit&1 == 0 {
		return -1
	}
	return int(stdBase[p]) + bits.OnesCount64(w&(1<<bit-1))
}

// standardName returns the interned name for code, or "" if it is not standard.
func standardName(code uint32) string {
	i := standardIndex(code)
	if i < 0 {
		return ""
	}
	return segmentNames[i*3 : i*3+3]
}
