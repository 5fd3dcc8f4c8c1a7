// A module of its own for the parser benchmark against github.com/lenaten/hl7, the baseline SPEC §5
// names: the module proxy does not serve lenaten/hl7, so it is reached through the shared baselines
// folder beside the repository, and it never enters vaxgate's own go.mod.
module github.com/vaxgate/vaxgate/bench/parser

go 1.26.8

require (
	github.com/lenaten/hl7 v0.0.0-00010101000000-000000000000
	github.com/vaxgate/vaxgate v0.0.0-00010101000000-000000000000
)

require (
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/vaxgate/vaxgate => ../..

replace github.com/lenaten/hl7 => ../../../shared/baselines/lenaten-hl7
