package hl7

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

// standardName returns the interned name for code, or "" if it is not standard.
func standardName(code uint32) string {
	lo, hi := 0, len(segmentNames)/3
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		s := segmentNames[mid*3 : mid*3+3]
		switch c := nameCode(s[0], s[1], s[2]); {
		case c == code:
			return s
		case c < code:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return ""
}
