package status

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "mews_keyd"

// Metrics are the daemon's Prometheus metrics. Create them even when
// status_listen is unset; they are then simply never scraped.
type Metrics struct {
	events         *prometheus.CounterVec
	commands       *prometheus.CounterVec
	encodeDuration *prometheus.HistogramVec
	apiRequests    *prometheus.CounterVec
	reconnects     prometheus.Counter
	outboxDepth    prometheus.Gauge
}

// NewMetrics registers the daemon's metrics, plus the Go runtime and process
// collectors (memory and CPU), with reg. It panics if reg already has them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_total",
			Help: "WebSocket events received from Mews, by type.",
		}, []string{"type"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "commands_total",
			Help: "Device commands that reached a final state, by state.",
		}, []string{"state"}),
		encodeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "encode_duration_seconds",
			Help: "Time an encoder took for one key operation, card presentation included.",
			// Up to the default 60 s encoder timeout.
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60},
		}, []string{"encoder"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "api_requests_total",
			Help: "Connector API requests, by operation and HTTP status (\"error\" when no response).",
		}, []string{"op", "status"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconnects_total",
			Help: "WebSocket reconnections after a lost connection.",
		}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "outbox_depth",
			Help: "Mews state updates waiting to be accepted.",
		}),
	}
	reg.MustRegister(m.events, m.commands, m.encodeDuration, m.apiRequests, m.reconnects, m.outboxDepth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Event counts one WebSocket event of the given type.
func (m *Metrics) Event(eventType string) { m.events.WithLabelValues(eventType).Inc() }

// CommandFinished counts a command reaching a final state (Processed,
// Error, Cancelled).
func (m *Metrics) CommandFinished(state string) { m.commands.WithLabelValues(state).Inc() }

// ObserveEncode records how long one encoder operation took.
func (m *Metrics) ObserveEncode(encoder string, d time.Duration) {
	m.encodeDuration.WithLabelValues(encoder).Observe(d.Seconds())
}

// APIRequest counts one Connector API request; status 0 means no response
// (network error or timeout).
func (m *Metrics) APIRequest(op string, status int) {
	label := "error"
	if status > 0 {
		label = strconv.Itoa(status)
	}
	m.apiRequests.WithLabelValues(op, label).Inc()
}

// Reconnect counts one WebSocket reconnection.
func (m *Metrics) Reconnect() { m.reconnects.Inc() }

// SetOutboxDepth sets the number of state updates waiting for Mews.
func (m *Metrics) SetOutboxDepth(n int) { m.outboxDepth.Set(float64(n)) }
