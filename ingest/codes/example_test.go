package codes_test

import (
	"fmt"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Checking the vaccine of an RXA segment: RXA-5 CVX, RXA-17 MVX.
func ExampleSet_Vaccine() {
	set := codes.Default()
	v, ok := set.Vaccine("8") // senders drop the leading zero
	fmt.Println(ok, v.CVX, v.ShortName, v.Status, v.Groups)

	m, _ := set.Manufacturer("skb")
	fmt.Println(m.MVX, m.Name, m.Status)
	fmt.Println(set.IsProduct("08", "SKB"), set.IsProduct("08", "PFR"))
	// Output:
	// true 08 Hep B, adolescent or pediatric Active [HepB]
	// SKB GlaxoSmithKline Active
	// true false
}

func ExampleSet_NDC() {
	set := codes.Default()
	for _, code := range []string{"49281-0425-50", "49281042550", "49281-425-50"} {
		e, ok := set.NDC(code)
		fmt.Println(ok, e.NDC, e.CVX, e.MVX, e.Kind)
	}
	// Output:
	// true 49281-0425-50 140 PMC sale
	// true 49281-0425-50 140 PMC sale
	// true 49281-0425-50 140 PMC sale
}

// Refreshing the tables from a newer CDC download, as `vaxgate codes import` does.
func ExampleImport() {
	set, report, err := codes.Import(codes.Default(), "testdata/newer/cvx.xml")
	if err != nil {
		fmt.Println(err)
		return
	}
	f := report.Files[0]
	fmt.Println(f.Kind, f.Format, f.Records, "records")
	v, _ := set.Vaccine("28")
	fmt.Println(v.ShortName, v.Status)
	// Output:
	// cvx xml 5 records
	// DT (pediatric) Inactive
}
