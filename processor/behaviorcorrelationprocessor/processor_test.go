package behaviorcorrelationprocessor

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/metadata"
)

func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.Timeout = 2 * time.Second // generous: tests that want timeouts set their own
	return cfg
}

func testSettings(tt *componenttest.Telemetry) processor.Settings {
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	return set
}

// newTracesProcessor starts a traces processor against cfg; it returns the sink and the
// telemetry the processor reports to.
func newTracesProcessor(t *testing.T, cfg *Config) (processor.Traces, *consumertest.TracesSink, *componenttest.Telemetry) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), testSettings(tt), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p, sink, tt
}

// counter is the value of a self-metric counter, for one reason or ("") all of them.
func counter(t *testing.T, tt *componenttest.Telemetry, name, reason string) int64 {
	m, err := tt.GetMetric("otelcol_processor_behaviorcorrelation_" + name)
	if err != nil {
		return 0 // nothing recorded yet
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is not an int64 sum", name)
	total := int64(0)
	for _, dp := range sum.DataPoints {
		if v, _ := dp.Attributes.Value("reason"); reason == "" || v.AsString() == reason {
			total += dp.Value
		}
	}
	return total
}

func histogramCount(t *testing.T, tt *componenttest.Telemetry, name string) uint64 {
	m, err := tt.GetMetric("otelcol_processor_behaviorcorrelation_" + name)
	if err != nil {
		return 0
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok)
	n := uint64(0)
	for _, dp := range h.DataPoints {
		n += dp.Count
	}
	return n
}

// makeTraces builds `traces` traces of `spans` spans over three services; span s of every
// trace sits under service s%3, so one trace's spans are spread over the resources and
// interleaved with other traces in document order.
func makeTraces(traces, spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	services := []string{"frontend", "checkout", "payment"}
	scopes := make([]ptrace.SpanSlice, len(services))
	for i, svc := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("deployment.environment", "test")
		scopes[i] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	for tr := 0; tr < traces; tr++ {
		for s := 0; s < spans; s++ {
			sp := scopes[s%len(services)].AppendEmpty()
			sp.SetTraceID(traceID(tr))
			sp.SetSpanID(spanID(tr, s))
			if s > 0 {
				sp.SetParentSpanID(spanID(tr, 0))
			}
			sp.SetName(fmt.Sprintf("op-%d-%d", tr, s))
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + tr*1000 + s))
			sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_100_000 + tr*1000 + s))
			sp.Status().SetCode(ptrace.StatusCodeOk)
			a := sp.Attributes()
			a.PutStr("http.route", fmt.Sprintf("/api/%d", s))
			a.PutStr("http.request.method", "GET")
			a.PutInt("http.response.status_code", 200)
			a.PutDouble("ratio", 0.25)
			a.PutBool("cached", s%2 == 0)
		}
	}
	return td
}

func traceID(tr int) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], 0xabc)
	binary.BigEndian.PutUint64(id[8:], uint64(tr+1))
	return id
}

func spanID(tr, s int) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(tr+1)<<20|uint64(s+1))
	return id
}

func str(t *testing.T, attrs pcommon.Map, key string) string {
	t.Helper()
	v, ok := attrs.Get(key)
	require.True(t, ok, "missing %s", key)
	require.Equal(t, pcommon.ValueTypeStr, v.Type(), key)
	return v.Str()
}

func strs(t *testing.T, attrs pcommon.Map, key string) []string {
	t.Helper()
	v, ok := attrs.Get(key)
	require.True(t, ok, "missing %s", key)
	require.Equal(t, pcommon.ValueTypeSlice, v.Type(), key)
	var out []string
	for _, e := range v.Slice().All() {
		out = append(out, e.Str())
	}
	return out
}

// requireAnnotated checks the fake sidecar's annotations on one item (see fakeSidecar).
func requireAnnotated(t *testing.T, attrs pcommon.Map, node, service string, evidence [8]byte) {
	t.Helper()
	assert.Equal(t, node, str(t, attrs, attrSpecNodeID))
	assert.Equal(t, service, str(t, attrs, attrContext))
	assert.Equal(t, "deterministic", str(t, attrs, attrMatchType))
	assert.Equal(t, "ok", str(t, attrs, attrCorrelationState))
	conf, _ := attrs.Get(attrConfidence)
	assert.Equal(t, pcommon.ValueTypeDouble, conf.Type())
	assert.Equal(t, 0.75, conf.Double())
	score, _ := attrs.Get(attrDriftScore)
	assert.Equal(t, 0.1235, score.Double(), "float32 0.123456 rounded to 4 decimals")
	assert.Contains(t, []string{"none", "low", "medium", "high"}, str(t, attrs, attrDriftLevel))
	assert.Contains(t, []string{"none", "benign", "semantic"}, str(t, attrs, attrDriftClass))
	kinds := strs(t, attrs, attrDriftKinds)
	require.Len(t, kinds, 1)
	assert.Contains(t, fakeDriftKinds, kinds[0])
	assert.Equal(t, "rule.fake", strs(t, attrs, attrRuleIDs)[0])
	assert.Equal(t, hex.EncodeToString(evidence[:]), str(t, attrs, attrEvidenceID))
	assert.Len(t, str(t, attrs, attrEvidenceID), 16)
	assert.Equal(t, "spec-hash-1", str(t, attrs, attrSpecVersion))
}

func requireUnannotated(t *testing.T, attrs pcommon.Map) {
	t.Helper()
	for k := range attrs.All() {
		require.False(t, strings.HasPrefix(k, behaviorPrefix), "unexpected %s", k)
	}
}

// forEachSpan visits the spans with their resource's service.name.
func forEachSpan(td ptrace.Traces, f func(service string, sp ptrace.Span)) {
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				f(svc.Str(), sp)
			}
		}
	}
}

func TestTracesAnnotated(t *testing.T) {
	side := newFakeSidecar(t)
	p, sink, tt := newTracesProcessor(t, testConfig(side.addr))

	td := makeTraces(4, 5)
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	require.Len(t, sink.AllTraces(), 1)
	got := sink.AllTraces()[0]
	count := 0
	forEachSpan(got, func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
		v, _ := sp.Attributes().Get("http.request.method")
		assert.Equal(t, "GET", v.Str(), "the item's own attributes stay")
		count++
	})
	assert.Equal(t, 20, count)

	reqs := side.received()
	require.Len(t, reqs, 1, "one batch under the limit is one request")
	req := reqs[0]
	assert.Equal(t, behaviorpb.Signal_SIGNAL_SPANS, req.GetSignal())
	assert.Equal(t, uint64(1), req.GetProjectionVersion(), "echoes the projection version from Hello")
	assert.Len(t, req.GetResourceFirstRow(), 3*4, "three resources, each sent once")
	rows, problem := readRequest(req)
	require.Empty(t, problem)
	assert.Equal(t, "frontend", rows[0].service)
	assert.Equal(t, behaviorpb.ValueType_VALUE_TYPE_INT, rows[0].attributeTypes["http.response.status_code"])
	assert.Equal(t, "200", rows[0].attributes["http.response.status_code"])
	assert.Equal(t, "0.25", rows[0].attributes["ratio"])
	assert.Equal(t, "true", rows[0].attributes["cached"])

	assert.Equal(t, int64(20), counter(t, tt, "items_annotated", ""))
	assert.Equal(t, int64(1), counter(t, tt, "requests_sent", ""))
	assert.Equal(t, int64(proto.Size(req)), counter(t, tt, "request_bytes", ""))
	assert.Equal(t, uint64(1), histogramCount(t, tt, "request_duration"))
	assert.Zero(t, counter(t, tt, "items_unannotated", ""))
}

func TestReannotatingReplacesBehaviorAttributes(t *testing.T) {
	side := newFakeSidecar(t)
	p, sink, _ := newTracesProcessor(t, testConfig(side.addr))
	td := makeTraces(1, 2)
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.Attributes().PutStr("behavior.stale", "x")
	sp.Attributes().PutStr(attrSpecNodeID, "old")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
		_, stale := sp.Attributes().Get("behavior.stale")
		assert.False(t, stale)
		n := 0
		for k := range sp.Attributes().All() {
			if strings.HasPrefix(k, behaviorPrefix) {
				n++
			}
		}
		assert.Equal(t, contractAttributes, n)
	})
}

func TestLogsAnnotated(t *testing.T) {
	side := newFakeSidecar(t)
	tt := componenttest.NewTelemetry()
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), testSettings(tt), testConfig(side.addr), sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	ld := plog.NewLogs()
	for r, svc := range []string{"cart", "ads"} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", svc)
		recs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i := 0; i < 3; i++ {
			rec := recs.AppendEmpty()
			rec.SetSpanID(spanID(r, i))
			rec.SetTraceID(traceID(r))
			rec.SetObservedTimestamp(123)
			rec.SetSeverityNumber(plog.SeverityNumberWarn)
			rec.SetEventName("cart.updated")
			rec.Attributes().PutStr("user.id", "u1")
			if i == 2 {
				rec.Body().SetEmptyMap().PutStr("msg", fmt.Sprintf("%s-%d", svc, i))
			} else {
				rec.Body().SetStr(fmt.Sprintf("%s says %d", svc, i))
			}
		}
	}
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	got := sink.AllLogs()[0]
	n := 0
	for _, rl := range got.ResourceLogs().All() {
		svc, _ := rl.Resource().Attributes().Get("service.name")
		for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
			body := rec.Body().AsString()
			if rec.Body().Type() == pcommon.ValueTypeMap {
				body = `{"msg":"` + rec.Body().Map().AsRaw()["msg"].(string) + `"}`
			}
			requireAnnotated(t, rec.Attributes(), body, svc.Str(), rec.SpanID())
			n++
		}
	}
	assert.Equal(t, 6, n)
	rows, problem := readRequest(side.received()[0])
	require.Empty(t, problem)
	assert.Equal(t, "cart.updated", rows[0].name)
	assert.Equal(t, int64(123), int64(binary.LittleEndian.Uint64(side.received()[0].GetStartTimeUnixNano())), "observed time when time is 0")
	assert.Equal(t, int64(6), counter(t, tt, "items_annotated", ""))
}

func TestMetricsAnnotated(t *testing.T) {
	side := newFakeSidecar(t)
	tt := componenttest.NewTelemetry()
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), testSettings(tt), testConfig(side.addr), sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	gauge := ms.AppendEmpty()
	gauge.SetName("queue.depth")
	gp := gauge.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetIntValue(7)
	ex := gp.Exemplars().AppendEmpty()
	ex.SetSpanID(spanID(9, 9))
	ex.SetTraceID(traceID(9))
	ms.AppendEmpty().SetName("no.data") // a metric without data has no rows
	sum := ms.AppendEmpty()
	sum.SetName("requests")
	sumPoints := sum.SetEmptySum().DataPoints()
	for i := 0; i < 2; i++ {
		dp := sumPoints.AppendEmpty()
		dp.SetDoubleValue(1.5)
		dp.Attributes().PutStr("route", "/cart")
	}
	hist := ms.AppendEmpty()
	hist.SetName("latency")
	hp := hist.SetEmptyHistogram().DataPoints().AppendEmpty()
	hp.SetSum(10)
	hp.SetCount(4)
	exp := ms.AppendEmpty()
	exp.SetName("latency.exp")
	exp.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().SetCount(3) // no sum: NaN
	summ := ms.AppendEmpty()
	summ.SetName("sizes")
	sp := summ.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetSum(9)
	sp.SetCount(3)

	require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	got := sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	check := func(attrs pcommon.Map, name, value string, evidence [8]byte) {
		requireAnnotated(t, attrs, name, "checkout", evidence)
		assert.Equal(t, []string{"rule.fake", "value=" + value}, strs(t, attrs, attrRuleIDs))
	}
	check(got.At(0).Gauge().DataPoints().At(0).Attributes(), "queue.depth", "7", spanID(9, 9))
	requireUnannotated(t, pcommon.NewMap())
	check(got.At(2).Sum().DataPoints().At(0).Attributes(), "requests", "1.5", [8]byte{})
	check(got.At(2).Sum().DataPoints().At(1).Attributes(), "requests", "1.5", [8]byte{})
	check(got.At(3).Histogram().DataPoints().At(0).Attributes(), "latency", "2.5", [8]byte{})
	check(got.At(4).ExponentialHistogram().DataPoints().At(0).Attributes(), "latency.exp", "NaN", [8]byte{})
	check(got.At(5).Summary().DataPoints().At(0).Attributes(), "sizes", "3", [8]byte{})
	assert.Equal(t, int64(6), counter(t, tt, "items_annotated", ""))
}

func TestChunkingKeepsTracesTogether(t *testing.T) {
	side := newFakeSidecar(t)
	cfg := testConfig(side.addr)
	cfg.MaxMessageBytes = 8 << 10
	p, sink, tt := newTracesProcessor(t, cfg)

	td := makeTraces(60, 7)
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
	assert.Equal(t, int64(420), counter(t, tt, "items_annotated", ""))

	reqs := side.received()
	require.Greater(t, len(reqs), 3, "the batch does not fit in one request")
	assert.Equal(t, int64(len(reqs)), counter(t, tt, "requests_sent", ""))
	where := map[pcommon.TraceID]int{}
	rows := 0
	for i, req := range reqs {
		assert.LessOrEqual(t, proto.Size(req), cfg.MaxMessageBytes, "request %d", i)
		decoded, problem := readRequest(req)
		require.Empty(t, problem)
		rows += len(decoded)
		for _, r := range decoded {
			if j, seen := where[r.traceID]; seen {
				assert.Equal(t, j, i, "a trace split over requests %d and %d", j, i)
			}
			where[r.traceID] = i
		}
	}
	assert.Equal(t, 420, rows)
	assert.Len(t, where, 60)
}

// TestLargeBatchGoesOutInRequestsOfRequestRows: a batch of more than requestRows items is
// sent in several requests (so correlating one overlaps applying another), traces whole, each
// request at most requestRows rows unless one trace is larger, and every item annotated.
func TestLargeBatchGoesOutInRequestsOfRequestRows(t *testing.T) {
	side := newFakeSidecar(t)
	p, sink, tt := newTracesProcessor(t, testConfig(side.addr))

	const traces, spans, bigTrace = 1400, 7, requestRows + 10
	td := makeTraces(traces, spans)
	big, s := makeTraces(1, bigTrace), 0
	forEachSpan(big, func(_ string, sp ptrace.Span) { // trace number `traces`, not 0
		sp.SetTraceID(traceID(traces))
		sp.SetSpanID(spanID(traces, s))
		s++
	})
	big.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	total := traces*spans + bigTrace
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
	assert.Equal(t, int64(total), counter(t, tt, "items_annotated", ""))

	reqs := side.received()
	require.GreaterOrEqual(t, len(reqs), 3)
	where := map[pcommon.TraceID]int{}
	rows := 0
	for i, req := range reqs {
		decoded, problem := readRequest(req)
		require.Empty(t, problem)
		rows += len(decoded)
		ids := map[pcommon.TraceID]bool{}
		for _, r := range decoded {
			if j, seen := where[r.traceID]; seen {
				assert.Equal(t, j, i, "a trace split over requests %d and %d", j, i)
			}
			where[r.traceID] = i
			ids[r.traceID] = true
		}
		if len(decoded) > requestRows {
			assert.Len(t, ids, 1, "request %d has %d rows: more than requestRows, and more than one trace", i, len(decoded))
		}
	}
	assert.Equal(t, total, rows)
	assert.Len(t, where, traces+1)
}

func TestChunkingTraceLargerThanARequest(t *testing.T) {
	side := newFakeSidecar(t)
	cfg := testConfig(side.addr)
	cfg.MaxMessageBytes = 4 << 10
	p, sink, tt := newTracesProcessor(t, cfg)

	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 120)))
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
	assert.Equal(t, int64(120), counter(t, tt, "items_annotated", ""))
	assert.Greater(t, len(side.received()), 1)
	for _, req := range side.received() {
		assert.LessOrEqual(t, proto.Size(req), cfg.MaxMessageBytes)
	}
}

func TestItemLargerThanARequestPassesUnannotated(t *testing.T) {
	side := newFakeSidecar(t)
	cfg := testConfig(side.addr)
	cfg.MaxMessageBytes = 4 << 10
	p, sink, tt := newTracesProcessor(t, cfg)

	td := makeTraces(3, 3)
	huge := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(1)
	huge.Attributes().PutStr("payload", strings.Repeat("x", 5000))
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		if sp.SpanID() == huge.SpanID() {
			requireUnannotated(t, sp.Attributes())
			return
		}
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
	assert.Equal(t, int64(1), counter(t, tt, "items_unannotated", reasonTooLarge))
	assert.Equal(t, int64(8), counter(t, tt, "items_annotated", ""))
}

func TestSidecarLimitAppliesWhenSmaller(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) { f.maxRequestBytes = 6 << 10 })
	p, sink, _ := newTracesProcessor(t, testConfig(side.addr))
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(40, 4)))
	require.Greater(t, len(side.received()), 1)
	for _, req := range side.received() {
		assert.LessOrEqual(t, proto.Size(req), 6<<10)
	}
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
}

func TestInflightBounded(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) { f.delay = 20 * time.Millisecond })
	cfg := testConfig(side.addr)
	cfg.MaxMessageBytes = 4 << 10
	cfg.MaxInflight = 2
	p, sink, _ := newTracesProcessor(t, cfg)
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(40, 4)))
	require.Greater(t, len(side.received()), 4)
	side.set(func(f *fakeSidecar) { assert.Equal(t, 2, f.maxInflight) })
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
}

func TestNoInflightSlotIsATimeout(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) { f.delay = 150 * time.Millisecond })
	cfg := testConfig(side.addr)
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxMessageBytes = 4 << 10
	cfg.MaxInflight = 1
	p, sink, tt := newTracesProcessor(t, cfg)
	began := time.Now()
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(40, 4)))
	assert.Less(t, time.Since(began), time.Second, "the batch waits at most about one timeout")
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	chunks := counter(t, tt, "requests_failed", reasonTimeout)
	assert.Greater(t, chunks, int64(1))
	assert.Equal(t, chunks, counter(t, tt, "requests_timed_out", ""))
	assert.Less(t, counter(t, tt, "requests_sent", ""), chunks, "chunks that got no slot were never sent")
	assert.Equal(t, int64(160), counter(t, tt, "items_unannotated", reasonTimeout))
}

func TestFailOpenOnTimeout(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) { f.delay = time.Second })
	cfg := testConfig(side.addr)
	cfg.Timeout = 50 * time.Millisecond
	p, sink, tt := newTracesProcessor(t, cfg)

	began := time.Now()
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(2, 3)))
	assert.Less(t, time.Since(began), 500*time.Millisecond)
	require.Len(t, sink.AllTraces(), 1, "data passes on")
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Equal(t, int64(1), counter(t, tt, "requests_timed_out", ""))
	assert.Equal(t, int64(1), counter(t, tt, "requests_failed", reasonTimeout))
	assert.Equal(t, int64(6), counter(t, tt, "items_unannotated", reasonTimeout))
	assert.Zero(t, counter(t, tt, "items_annotated", ""))
}

func TestFailOpenWhenSidecarGoesAway(t *testing.T) {
	side := newFakeSidecar(t)
	p, sink, tt := newTracesProcessor(t, testConfig(side.addr))
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	side.stop()

	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 3)))
	require.Len(t, sink.AllTraces(), 2)
	forEachSpan(sink.AllTraces()[1], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Equal(t, int64(3), counter(t, tt, "items_unannotated", reasonUnavailable))
	assert.Equal(t, int64(2), counter(t, tt, "items_annotated", ""))
}

func TestFailOpenOnRejection(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) {
		f.correlateErr = status.Error(codes.InvalidArgument, "attributes: counts too short")
	})
	p, sink, tt := newTracesProcessor(t, testConfig(side.addr))
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Equal(t, int64(1), counter(t, tt, "requests_failed", reasonRejected))
	assert.Equal(t, int64(2), counter(t, tt, "items_unannotated", reasonRejected))
}

func TestFailClosedReturnsError(t *testing.T) {
	for name, change := range map[string]func(*fakeSidecar){
		"timeout":  func(f *fakeSidecar) { f.delay = time.Second },
		"rejected": func(f *fakeSidecar) { f.correlateErr = status.Error(codes.Internal, "boom") },
		"bad response": func(f *fakeSidecar) {
			f.mutate = func(r *behaviorpb.CorrelateResponse) { r.Rows++ }
		},
	} {
		t.Run(name, func(t *testing.T) {
			side := newFakeSidecar(t)
			side.set(change)
			cfg := testConfig(side.addr)
			cfg.Timeout = 100 * time.Millisecond
			cfg.FailureMode = FailureModeClosed
			p, sink, _ := newTracesProcessor(t, cfg)
			err := p.ConsumeTraces(context.Background(), makeTraces(1, 2))
			require.ErrorContains(t, err, "2 of 2 items not annotated")
			require.ErrorContains(t, err, "failure_mode is closed")
			assert.Empty(t, sink.AllTraces(), "the batch is refused")
		})
	}
}

func TestFailClosedWhenSidecarUnreachable(t *testing.T) {
	cfg := testConfig(unusedAddress(t))
	cfg.FailureMode = FailureModeClosed
	p, sink, tt := newTracesProcessor(t, cfg)
	require.ErrorContains(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)), "(unavailable)")
	assert.Empty(t, sink.AllTraces())
	assert.Equal(t, int64(2), counter(t, tt, "items_unannotated", reasonUnavailable))
}

func TestBadResponsesAreCountedFailures(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) {
		f.mutate = func(r *behaviorpb.CorrelateResponse) { r.Rows-- }
	})
	p, sink, tt := newTracesProcessor(t, testConfig(side.addr))
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(2, 2)))
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Equal(t, int64(1), counter(t, tt, "requests_failed", reasonBadResponse))
	assert.Equal(t, int64(4), counter(t, tt, "items_unannotated", reasonBadResponse))
}

func TestCheckResponse(t *testing.T) {
	valid := func() *behaviorpb.CorrelateResponse {
		req := makeRequest(t, makeTraces(2, 3))
		rows, problem := readRequest(req)
		require.Empty(t, problem)
		return annotate(req, rows)
	}
	_, err := checkResponse(valid(), 6, len(fakeDriftKinds))
	require.NoError(t, err)

	le := binary.LittleEndian
	tests := map[string]struct {
		mutate func(r *behaviorpb.CorrelateResponse)
		want   string
	}{
		"version":            {func(r *behaviorpb.CorrelateResponse) { r.ProtocolVersion = 2 }, "protocol_version 2"},
		"row count":          {func(r *behaviorpb.CorrelateResponse) { r.Rows = 5 }, "5 rows for a request of 6"},
		"no strings":         {func(r *behaviorpb.CorrelateResponse) { r.Strings = nil }, "strings[0]"},
		"first string":       {func(r *behaviorpb.CorrelateResponse) { r.Strings[0] = "x" }, "strings[0]"},
		"short column":       {func(r *behaviorpb.CorrelateResponse) { r.Confidence = r.Confidence[:20] }, "column confidence has 20 bytes, want 24"},
		"missing column":     {func(r *behaviorpb.CorrelateResponse) { r.EvidenceId = nil }, "column evidence_id"},
		"node code":          {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.SpecNodeId[4:], 999) }, "spec_node_id[1]: code 999"},
		"context code":       {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.Context, 999) }, "context[0]: code 999"},
		"match type":         {func(r *behaviorpb.CorrelateResponse) { r.MatchType[2] = 3 }, "row 2: match_type 3"},
		"status":             {func(r *behaviorpb.CorrelateResponse) { r.CorrelationStatus[0] = 9 }, "correlation_status 9"},
		"level":              {func(r *behaviorpb.CorrelateResponse) { r.DriftLevel[0] = 4 }, "drift_level 4"},
		"class":              {func(r *behaviorpb.CorrelateResponse) { r.DriftClass[0] = 3 }, "drift_class 3"},
		"confidence range":   {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.Confidence, 0x3fc00000) }, "confidence 1.5"},
		"confidence nan":     {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.DriftScore, 0x7fc00000) }, "drift_score NaN"},
		"unknown drift kind": {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.DriftKinds, 1<<3) }, "bits beyond the 3 names"},
		"rule counts": {func(r *behaviorpb.CorrelateResponse) {
			le.PutUint32(r.RuleCounts, 5)
		}, "rule_counts add up to more"},
		"rule ids left over": {func(r *behaviorpb.CorrelateResponse) {
			r.RuleIds = le.AppendUint32(r.RuleIds, 0)
		}, "rule_ids has 28 bytes"},
		"rule code": {func(r *behaviorpb.CorrelateResponse) { le.PutUint32(r.RuleIds, 77) }, "rule_ids[0]: code 77"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := valid()
			tt.mutate(r)
			_, err := checkResponse(r, 6, len(fakeDriftKinds))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// makeRequest projects a batch into one request with every attribute.
func makeRequest(t *testing.T, td ptrace.Traces) *behaviorpb.CorrelateRequest {
	var reqs []*behaviorpb.CorrelateRequest
	tooLarge := plan(newSpanBatch(td), newProjection(nil), 4<<20, requestRows, func(c *chunk) { reqs = append(reqs, c.req) })
	require.Empty(t, tooLarge)
	require.Len(t, reqs, 1)
	return reqs[0]
}

func TestVersionMismatchRefusesStart(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*fakeSidecar)
		want   []string
	}{
		"other version": {
			func(f *fakeSidecar) { f.helloVersion = 2 },
			[]string{"speaks protocol version 2", "this processor speaks version 1"},
		},
		"failed precondition": {
			func(f *fakeSidecar) {
				f.helloErr = status.Error(codes.FailedPrecondition, "this sidecar speaks protocol version 3")
			},
			[]string{"refused protocol version 1", "speaks protocol version 3"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			side := newFakeSidecar(t)
			side.set(tc.change)
			p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), testConfig(side.addr), consumertest.NewNop())
			require.NoError(t, err)
			err = p.Start(context.Background(), componenttest.NewNopHost())
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
			require.ErrorContains(t, err, side.addr)
			require.NoError(t, p.Shutdown(context.Background()))
		})
	}
}

// unusedAddress is a loopback address nothing listens on (until a test serves on it).
func unusedAddress(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

func TestSidecarDownAtStartThenUp(t *testing.T) {
	addr := unusedAddress(t)
	cfg := testConfig(addr)
	cfg.Timeout = 200 * time.Millisecond
	p, sink, tt := newTracesProcessor(t, cfg) // starts: Hello fails, a warning, no error

	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Equal(t, int64(2), counter(t, tt, "items_unannotated", reasonUnavailable))

	side := &fakeSidecar{t: t, keep: true, helloVersion: protocolVersion, helloProjection: &behaviorpb.Projection{Version: 1, AllAttributes: true}}
	side.serve(t, addr)
	require.Eventually(t, func() bool {
		sink.Reset()
		require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
		sp := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		_, ok := sp.Attributes().Get(attrSpecNodeID)
		return ok
	}, 10*time.Second, 50*time.Millisecond, "annotating resumes once the sidecar answers Hello")
	forEachSpan(sink.AllTraces()[0], func(service string, sp ptrace.Span) {
		requireAnnotated(t, sp.Attributes(), sp.Name(), service, sp.SpanID())
	})
}

func TestProjectionFromHelloThenFromResponse(t *testing.T) {
	side := newFakeSidecar(t)
	side.set(func(f *fakeSidecar) {
		f.helloProjection = &behaviorpb.Projection{Version: 7, AttributeKeys: []string{"http.route", "service.name"}}
		f.answerProjection = &behaviorpb.Projection{Version: 8, AllAttributes: true}
	})
	p, _, _ := newTracesProcessor(t, testConfig(side.addr))

	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	reqs := side.received()
	require.Len(t, reqs, 2)

	first, problem := readRequest(reqs[0])
	require.Empty(t, problem)
	assert.Equal(t, uint64(7), reqs[0].GetProjectionVersion())
	assert.Equal(t, map[string]string{"http.route": "/api/0"}, first[0].attributes, "only the keys the sidecar asked for")
	assert.Equal(t, "frontend", first[0].service, "resource attributes are projected by the same keys")
	_, sent := first[0].attributes["http.request.method"]
	assert.False(t, sent)

	second, problem := readRequest(reqs[1])
	require.Empty(t, problem)
	assert.Equal(t, uint64(8), reqs[1].GetProjectionVersion(), "the response's projection replaces Hello's")
	assert.Len(t, second[0].attributes, 5)
}

func TestSignalTurnedOffPassesThrough(t *testing.T) {
	side := newFakeSidecar(t)
	cfg := testConfig(side.addr)
	cfg.Signals.Traces = false
	p, sink, _ := newTracesProcessor(t, cfg)
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(1, 2)))
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) { requireUnannotated(t, sp.Attributes()) })
	assert.Empty(t, side.received())
	side.set(func(f *fakeSidecar) { assert.Zero(t, f.hellos, "a signal turned off never talks to the sidecar") })
}

func TestEncoderSizeBoundsMessage(t *testing.T) {
	for _, n := range []int{1, 10, 500} {
		td := makeTraces(n, 3)
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.Attributes().PutStr("long", strings.Repeat("é", 300))
		sp.Attributes().PutStr("invalid", "a\xffb")
		e := newEncoder(behaviorpb.Signal_SIGNAL_SPANS, newProjection(nil), 0)
		b := newSpanBatch(td)
		for row := 0; row < b.rowCount(); row++ {
			e.addRow(b, row)
		}
		est := e.size()
		actual := proto.Size(e.request())
		assert.LessOrEqual(t, actual, est, "n=%d", n)
		assert.Less(t, est-actual, 512, "the bound stays tight, n=%d", n)
		_, err := proto.Marshal(e.request())
		require.NoError(t, err, "invalid UTF-8 is made valid before it reaches protobuf")
	}
}

func TestEncoderRollback(t *testing.T) {
	td := makeTraces(3, 2)
	b := newSpanBatch(td)
	e := newEncoder(behaviorpb.Signal_SIGNAL_SPANS, newProjection(nil), 0)
	e.addRow(b, 0)
	m := e.mark()
	before := proto.Size(e.request())
	for row := 1; row < b.rowCount(); row++ {
		e.addRow(b, row)
	}
	e.rollback(m)
	assert.Equal(t, before, proto.Size(e.request()))
	assert.Len(t, e.strings, len(e.codes))
	e.addRow(b, 3)
	rows, problem := readRequest(e.request())
	require.Empty(t, problem)
	require.Len(t, rows, 2)
	assert.Equal(t, b.spans[3].Name(), rows[1].name)
}
