package validate

import "github.com/vaxgate/vaxgate/ack"

// Vaccine codes sent two ways, and the data-quality checks of addresses and telephone numbers the
// CDC validator and AIRA's MQE make beyond the profile's formats.
var (
	ruleNDCAltUnknown = def(Rule{ID: "rxa-5-ndc-alternate-unknown", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 gives a CVX with an NDC beside it (RXA-5.4 or RXA-5.1) that the CDC's vaccine NDC tables do not list; the dose is recorded by its CVX.",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppTableValueNotFound,
		Location: "RXA-5.1, RXA-5.4", Reference: "CDC NDC unit of use / unit of sale",
		Message: "{at} is NDC {value}, which is not a vaccine NDC the CDC lists; the dose was recorded as CVX {detail}. Send the unit-of-use NDC in 5-4-2 form."})
	ruleCVXNDCMismatch = def(Rule{ID: "rxa-5-cvx-ndc-mismatch", Family: FamilyVaccine, Scope: ScopeVaccination,
		Description: "RXA-5 gives a CVX and an NDC that the CDC maps to a different CVX; the dose is recorded by its CVX.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "RXA-5.1, RXA-5.4", Reference: "CDC NDC crosswalk; " + refIG + " (CVX is the primary code)",
		Message: "{at} is NDC {value}, which the CDC maps to {detail}: the two codes name different vaccines. The CVX was recorded; check which vaccine was given."})

	ruleZipState = def(Rule{ID: "address-zip-state", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address (patient, next of kin, ordering facility, administering facility) whose ZIP code's first three digits belong to another state than the one given (USPS ZIP prefixes).",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "PID-11, NK1-4, ORC-22, RXA-11", Reference: "CDC validator; " + refMQE + " (address); USPS ZIP prefixes",
		Message: "{at} (ZIP code) is {value}, a ZIP code of {detail}. Check the ZIP code and the state."})
	ruleCountyState = def(Rule{ID: "address-county-state", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address whose county (XAD-9, a 5-digit FIPS 6-4 code) is a county of another state than the one given.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "PID-11.9, NK1-4.9", Reference: "CDC validator; HL7 table 0289 (FIPS 6-4)",
		Message: "{at} (county) is {value}, a county of {detail}. Send the county's 5-digit FIPS code, whose first two digits are the state's."})
	ruleCountyInvalid = def(Rule{ID: "address-county-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A US address whose county (XAD-9) is not a FIPS 6-4 county code (3 digits, or 5 with the state).",
		Severity:    ack.Warning, Code: ack.CodeTableValueNotFound, App: ack.AppInvalidValue,
		Location: "PID-11.9, NK1-4.9", Reference: "Z22 binding HL70289 (FIPS 6-4)",
		Message: "{at} (county) is {value}, which is not a FIPS county code. Send the 5-digit FIPS code, e.g. 25025 for Suffolk County, MA."})
	ruleFacilityZip = def(Rule{ID: "facility-zip-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "The administering facility's (RXA-11.13) or ordering facility's (ORC-22.5) US ZIP code is not 5 digits or ZIP+4.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "RXA-11.13, ORC-22.5", Reference: "CDC validator; Z22 LA2_IZ",
		Message: "{at} (facility ZIP code) is {value}; send 5 digits or ZIP+4 (12345-6789)."})
	rulePhoneMisplaced = def(Rule{ID: "phone-number-misplaced", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A telephone number with its area code inside XTN-7 (10 digits there, XTN-6 empty) or given only in XTN-1, which Z22 does not use.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-13, PID-14, NK1-5, NK1-6, ORC-14, ORC-23", Reference: "Z22 XTN_IZ (XTN-1 X, XTN-6 and XTN-7 C)",
		Message: "{at} (telephone) is {value}: {detail}. Send the area code in XTN-6 and the 7-digit number in XTN-7, e.g. ^PRN^PH^^^617^5551212."})
	rulePhoneUseEquipment = def(Rule{ID: "phone-use-equipment", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "XTN-2 (use) and XTN-3 (equipment) contradict each other: NET (e-mail) with a telephone equipment type, or Internet equipment with a telephone use.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppIllogicalValue,
		Location: "PID-13, NK1-5, XTN-2/XTN-3", Reference: "Z22 XTN_IZ; HL7 tables 0201, 0202",
		Message: "{at} says use {value} with equipment {detail}, which contradict each other. Send ^PRN^PH^^^area^number for a telephone, ^NET^Internet^address for an e-mail."})
	rulePhoneExtension = def(Rule{ID: "phone-extension-invalid", Family: FamilyQuality, Scope: ScopeSegment,
		Description: "A telephone extension (XTN-8) that is not 1 to 5 digits, or a country code (XTN-5) other than 1 with a US area code.",
		Severity:    ack.Warning, Code: ack.CodeDataType, App: ack.AppInvalidValue,
		Location: "PID-13, NK1-5, XTN-5, XTN-8", Reference: "Z22 XTN_IZ (XTN-5 NM 3, XTN-8 NM 5)",
		Message: "{at} is {value}; {detail}."})
)
