package file

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the drop-folder transport. Labels are of low cardinality: ACK codes and refusal
// reasons, never file names or patient data.
type metrics struct {
	pickedUp  prometheus.Counter
	processed prometheus.Counter
	errors    *prometheus.CounterVec
	messages  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pickedUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_file_files_picked_up_total",
			Help: "Files taken from a drop folder's inbox.",
		}),
		processed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_file_files_processed_total",
			Help: "Files processed to the end: ACK file written, input archived.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_file_files_error_total",
			Help: "Files refused into the error folder, by reason (not_hl7, too_large, unknown_site).",
		}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_file_messages_total",
			Help: "Messages of dropped files answered, by acknowledgement code.",
		}, []string{"code"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pickedUp, m.processed, m.errors, m.messages} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("file: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
