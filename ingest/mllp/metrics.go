package mllp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Frame outcomes, the values of the outcome label of vaxgate_mllp_frames_total.
const (
	outcomeOK       = "ok"        // a complete frame, handed on to be answered
	outcomeTooLarge = "too_large" // larger than MaxMessageSize: discarded as it streamed in, answered AR
	outcomePartial  = "partial"   // the connection ended in the middle of a frame
	outcomeTimeout  = "timeout"   // a started frame did not complete within ReadTimeout
)

// Why a connection ended, the values of the reason label of vaxgate_mllp_connections_closed_total.
const (
	closedBySender    = "sender"            // the sender closed it
	closedIdle        = "idle"              // IdleTimeout without a valid frame or ACK
	closedHandshake   = "handshake_timeout" // no HL7 frame within HandshakeTimeout
	closedReadTimeout = "read_timeout"      // a frame not completed within ReadTimeout
	closedPartial     = "partial_frame"     // the stream ended inside a frame
	closedJunk        = "junk"              // MaxJunkFrames frames in a row that were not HL7
	closedShutdown    = "shutdown"          // the server is stopping
	closedReadError   = "read_error"        // the connection failed
	closedTLS         = "tls_handshake"     // the TLS handshake failed or timed out
)

type metrics struct {
	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	rejected         *prometheus.CounterVec
	closed           *prometheus.CounterVec
	frames           *prometheus.CounterVec
	framesOK         prometheus.Counter // frames with outcome ok, resolved once: counted per message
	junk             prometheus.Counter
	junkFrames       prometheus.Counter
	frameBytes       prometheus.Gauge
	internalErrors   prometheus.Counter
	ackSeconds       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaxgate_mllp_connections",
			Help: "Open MLLP connections.",
		}),
		connectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_mllp_connections_total",
			Help: "MLLP connections accepted and served.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_mllp_connections_rejected_total",
			Help: "MLLP connections closed at once, by reason (max_connections, per_source, reserved).",
		}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_mllp_connections_closed_total",
			Help: "MLLP connections served and closed, by reason (sender, idle, handshake_timeout, read_timeout, partial_frame, junk, shutdown, read_error, tls_handshake).",
		}, []string{"reason"}),
		junkFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_mllp_junk_frames_total",
			Help: "MLLP frames that did not start like HL7 (MSH, FHS or BHS); answered AR.",
		}),
		frameBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vaxgate_mllp_frame_buffer_bytes",
			Help: "Memory held in chunks for MLLP frames larger than 32 KiB being received.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vaxgate_mllp_frames_total",
			Help: "MLLP frames received, by outcome (ok, too_large, partial, timeout).",
		}, []string{"outcome"}),
		junk: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_mllp_junk_bytes_total",
			Help: "Bytes received outside MLLP frames and skipped.",
		}),
		internalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vaxgate_mllp_internal_errors_total",
			Help: "Messages the MLLP server answered AR itself because the sender lookup or the pipeline failed.",
		}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vaxgate_mllp_ack_seconds",
			Help:    "Time from a frame read completely to its ACK written.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	// Every outcome is exported from the start, so that rate() and alerts see zeros, not gaps.
	for _, o := range []string{outcomeOK, outcomeTooLarge, outcomePartial, outcomeTimeout} {
		m.frames.WithLabelValues(o)
	}
	m.framesOK = m.frames.WithLabelValues(outcomeOK)
	for _, r := range []string{rejectFull, rejectPerSource, rejectReserved} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{closedBySender, closedIdle, closedHandshake, closedReadTimeout, closedPartial, closedJunk, closedShutdown, closedReadError, closedTLS} {
		m.closed.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.connectionsTotal, m.rejected, m.closed, m.frames, m.junk, m.junkFrames, m.frameBytes, m.internalErrors, m.ackSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mllp: register metrics: %w", err)
		}
	}
	return m, nil
}
