package behaviorcorrelationprocessor

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/metadata"
)

// The benchmarks work on 8192-item batches, the size the non-functional goals name
// (p99 added latency per 8192-span batch <= 20 ms).

const benchItems = 8192

func projectAll(b *testing.B, src batch) []*chunk {
	var chunks []*chunk
	tooLarge := plan(src, newProjection(nil), defaultMaxMessageBytes, func(c *chunk, _ bool) { chunks = append(chunks, c) })
	if len(tooLarge) > 0 {
		b.Fatal("items too large")
	}
	return chunks
}

func releaseAll(chunks []*chunk) {
	for _, c := range chunks {
		c.enc.release()
	}
}

func reportPerItem(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchItems, "ns/item")
}

// benchTraces is 8192 spans shaped like real traffic: 1024 traces of 8 spans over 3 services,
// 40 operation names, a handful of attributes of low cardinality and one request id that is
// unique per span (the worst case for the string table).
func benchTraces() ptrace.Traces {
	td := makeTraces(benchItems/8, 8)
	i := 0
	forEachSpan(td, func(_ string, sp ptrace.Span) {
		sp.SetName(fmt.Sprintf("GET /api/v1/resource/%d", i%40))
		sp.Attributes().PutStr("request.id", fmt.Sprintf("req-%08x", i))
		sp.Attributes().PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
		i++
	})
	return td
}

func BenchmarkProjectTraces8192(b *testing.B) {
	td := benchTraces()
	b.ReportAllocs()
	for b.Loop() {
		releaseAll(projectAll(b, newSpanBatch(td)))
	}
	reportPerItem(b)
}

// BenchmarkProjectTracesUniqueNames8192 is the worst case: every span name is new.
func BenchmarkProjectTracesUniqueNames8192(b *testing.B) {
	td := makeTraces(benchItems/8, 8)
	b.ReportAllocs()
	for b.Loop() {
		releaseAll(projectAll(b, newSpanBatch(td)))
	}
	reportPerItem(b)
}

func BenchmarkProjectTraces8192Chunked(b *testing.B) {
	td := benchTraces()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		plan(newSpanBatch(td), newProjection(nil), 256<<10, func(c *chunk, _ bool) { n++; c.enc.release() })
		if n < 2 {
			b.Fatal("expected several chunks")
		}
	}
	reportPerItem(b)
}

func BenchmarkApplyTraces8192(b *testing.B) {
	td := benchTraces()
	chunks := projectAll(b, newSpanBatch(td))
	rows, problem := readRequest(chunks[0].req)
	require.Empty(b, problem)
	resp, err := checkResponse(annotate(chunks[0].req, rows), benchItems, len(fakeDriftKinds))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		work := ptrace.NewTraces()
		td.CopyTo(work)
		src := newSpanBatch(work)
		b.StartTimer()
		newAnnotator(fakeDriftKinds).apply(resp, src, nil)
	}
	reportPerItem(b)
}

// BenchmarkCorrelateTraces8192 is the whole processor on a batch: projection, one gRPC round
// trip on loopback to a sidecar that answers a precomputed response, and applying it.
func BenchmarkCorrelateTraces8192(b *testing.B) {
	side := newFakeSidecar(b)
	td := benchTraces()
	chunks := projectAll(b, newSpanBatch(td))
	rows, problem := readRequest(chunks[0].req)
	require.Empty(b, problem)
	side.set(func(f *fakeSidecar) { f.fixed = annotate(chunks[0].req, rows) })

	tt := componenttest.NewTelemetry()
	defer func() { require.NoError(b, tt.Shutdown(context.Background())) }()
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	cfg := testConfig(side.addr)
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()

	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		work := ptrace.NewTraces()
		td.CopyTo(work)
		b.StartTimer()
		require.NoError(b, p.ConsumeTraces(context.Background(), work))
	}
	reportPerItem(b)
	require.Zero(b, counter(&testing.T{}, tt, "items_unannotated", ""))
}

func BenchmarkProjectLogs8192(b *testing.B) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "cart")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range benchItems {
		r := recs.AppendEmpty()
		r.SetTraceID(traceID(i / 8))
		r.SetSpanID(spanID(i/8, i%8))
		r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		r.SetSeverityNumber(plog.SeverityNumberInfo)
		r.Body().SetStr(fmt.Sprintf("item %d added to cart", i%50))
		r.Attributes().PutStr("event.name", "cart.add")
		r.Attributes().PutInt("quantity", int64(i%5))
	}
	b.ReportAllocs()
	for b.Loop() {
		releaseAll(projectAll(b, newLogBatch(ld)))
	}
	reportPerItem(b)
}

func BenchmarkProjectMetrics8192(b *testing.B) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for m := range benchItems / 64 {
		metric := ms.AppendEmpty()
		metric.SetName(fmt.Sprintf("metric.%d", m))
		points := metric.SetEmptyHistogram().DataPoints()
		for i := range 64 {
			p := points.AppendEmpty()
			p.SetSum(float64(i))
			p.SetCount(uint64(i + 1))
			p.Attributes().PutStr("route", fmt.Sprintf("/r/%d", i%8))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		releaseAll(projectAll(b, newPointBatch(md)))
	}
	reportPerItem(b)
}

var _ = behaviorpb.Signal_SIGNAL_SPANS
