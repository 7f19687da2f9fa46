package behaviorcorrelationprocessor

import (
	"context"
	"fmt"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/metadata"
)

// The benchmarks work on 8192-item batches, the size the non-functional goals name
// (p99 added latency per 8192-span batch <= 20 ms).

const benchItems = 8192

// projectAll projects the whole batch into one request (the per-item costs these benchmarks
// measure; BenchmarkProjectTraces8192Chunked measures the split into requestRows).
func projectAll(b *testing.B, src batch) []*chunk {
	var chunks []*chunk
	tooLarge := plan(src, newProjection(nil), defaultMaxMessageBytes, src.rowCount(), func(c *chunk) { chunks = append(chunks, c) })
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

// cpuMeter adds up the CPU time the process spends (every thread: GC workers included) while
// a benchmark's timer runs. On a shared machine wall time also counts waiting for a core;
// CPU time per item is the cost that bounds the collector's throughput.
type cpuMeter struct {
	total, began time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) start() { m.began = processCPU() }
func (m *cpuMeter) stop()  { m.total += processCPU() - m.began }

// reportPerItem reports wall and CPU time per item.
func reportPerItem(b *testing.B, cpu *cpuMeter) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchItems, "ns/item")
	if cpu != nil {
		b.ReportMetric(float64(cpu.total.Nanoseconds())/float64(b.N)/benchItems, "cpu-ns/item")
	}
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

// boutiqueTraces is 8192 spans shaped like the collector benchmark's load
// (tests/bench/bench_collector.py, tools/loadgen): Online Boutique checkout and cart traces
// tiled, one resource per service, 3 to 7 low-cardinality attributes per span.
func boutiqueTraces() ptrace.Traces {
	type shape struct {
		service, name string
		attrs         [][2]string
	}
	rpc := func(service, method string) [][2]string {
		return [][2]string{{"rpc.method", method}, {"rpc.service", "hipstershop." + service}, {"rpc.system", "grpc"}}
	}
	trace := func(root shape, caller string, calls [][3]string) []shape {
		out := []shape{root}
		for _, c := range calls {
			name := "hipstershop." + c[1] + "/" + c[2]
			out = append(out, shape{caller, name, rpc(c[1], c[2])}, shape{c[0], name, rpc(c[1], c[2])})
		}
		return out
	}
	templates := [][]shape{
		trace(shape{"checkoutservice", "hipstershop.CheckoutService/PlaceOrder", append([][2]string{
			{"app.order.id", "o-7"}, {"app.order.items.count", "2"}, {"app.user.currency", "EUR"}, {"app.user.id", "u-42"},
		}, rpc("CheckoutService", "PlaceOrder")...)}, "checkoutservice", [][3]string{
			{"cartservice", "CartService", "GetCart"}, {"productcatalogservice", "ProductCatalogService", "GetProduct"},
			{"currencyservice", "CurrencyService", "Convert"}, {"shippingservice", "ShippingService", "GetQuote"},
			{"paymentservice", "PaymentService", "Charge"}, {"shippingservice", "ShippingService", "ShipOrder"},
			{"cartservice", "CartService", "EmptyCart"}, {"emailservice", "EmailService", "SendOrderConfirmation"},
		}),
		trace(shape{"frontend", "GET /cart", [][2]string{
			{"http.request.method", "GET"}, {"http.response.status_code", "200"}, {"http.route", "/cart"}, {"url.path", "/cart"},
		}}, "frontend", [][3]string{
			{"cartservice", "CartService", "GetCart"}, {"currencyservice", "CurrencyService", "GetSupportedCurrencies"},
			{"productcatalogservice", "ProductCatalogService", "GetProduct"}, {"shippingservice", "ShippingService", "GetQuote"},
			{"currencyservice", "CurrencyService", "Convert"},
		}),
	}
	td := ptrace.NewTraces()
	byService := map[string]ptrace.SpanSlice{}
	made := 0
	for tr := 0; made < benchItems; tr++ {
		for s, sh := range templates[tr%len(templates)] {
			if made == benchItems {
				break
			}
			spans, ok := byService[sh.service]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				rs.Resource().Attributes().PutStr("service.name", sh.service)
				rs.Resource().Attributes().PutStr("service.namespace", "online-boutique")
				spans = rs.ScopeSpans().AppendEmpty().Spans()
				byService[sh.service] = spans
			}
			sp := spans.AppendEmpty()
			sp.SetTraceID(traceID(tr))
			sp.SetSpanID(spanID(tr, s))
			sp.SetName(sh.name)
			sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + made))
			sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_000_100_000 + made))
			for _, kv := range sh.attrs {
				if kv[0] == "http.response.status_code" || kv[0] == "app.order.items.count" {
					var n int64
					_, _ = fmt.Sscan(kv[1], &n)
					sp.Attributes().PutInt(kv[0], n)
				} else {
					sp.Attributes().PutStr(kv[0], kv[1])
				}
			}
			made++
		}
	}
	return td
}

func BenchmarkProjectBoutique8192(b *testing.B) {
	td := boutiqueTraces()
	loopPerItem(b, func(cpu *cpuMeter) {
		releaseAll(projectAll(b, newSpanBatch(td)))
	})
}

func BenchmarkApplyBoutique8192(b *testing.B) {
	benchmarkApply(b, boutiqueTraces())
}

func BenchmarkProjectTraces8192(b *testing.B) {
	td := benchTraces()
	loopPerItem(b, func(cpu *cpuMeter) {
		releaseAll(projectAll(b, newSpanBatch(td)))
	})
}

// BenchmarkProjectTracesUniqueNames8192 is the worst case: every span name is new.
func BenchmarkProjectTracesUniqueNames8192(b *testing.B) {
	td := makeTraces(benchItems/8, 8)
	loopPerItem(b, func(cpu *cpuMeter) {
		releaseAll(projectAll(b, newSpanBatch(td)))
	})
}

func BenchmarkProjectTraces8192Chunked(b *testing.B) {
	td := benchTraces()
	loopPerItem(b, func(cpu *cpuMeter) {
		n := 0
		plan(newSpanBatch(td), newProjection(nil), 256<<10, requestRows, func(c *chunk) { n++; c.enc.release() })
		if n < 2 {
			b.Fatal("expected several chunks")
		}
	})
}

// BenchmarkContractFloorBoutique8192 is the least any processor pays to write the contract's
// 12 attributes with pdata's public API: constant values (no response to read, no caches),
// one rule id and no drift kinds per span, an evidence id text prepared beforehand. Compare
// with BenchmarkApplyBoutique8192 on the same spans.
func BenchmarkContractFloorBoutique8192(b *testing.B) { benchmarkFloor(b, false) }

// BenchmarkSparseFloorBoutique8192 is the same floor for a span without drift under a sparse
// contract that would write only behavior.spec_node_id and behavior.drift_level on such
// spans (an option in docs/adr/0006, not what the processor does).
func BenchmarkSparseFloorBoutique8192(b *testing.B) { benchmarkFloor(b, true) }

func benchmarkFloor(b *testing.B, sparse bool) {
	td := boutiqueTraces()
	evidence := make([]string, 0, benchItems)
	for range benchItems {
		evidence = append(evidence, fmt.Sprintf("%016x", len(evidence)))
	}
	loopPerItem(b, func(cpu *cpuMeter) {
		var src *spanBatch
		untimed(b, cpu, func() { src = newSpanBatch(copyTraces(td)) })
		for row := range src.rowCount() {
			a := src.itemAttributes(row)
			if sparse {
				a.EnsureCapacity(a.Len() + 2)
				a.PutStr(attrSpecNodeID, "checkout:flow:PlaceOrder")
				a.PutStr(attrDriftLevel, "none")
				continue
			}
			a.EnsureCapacity(a.Len() + contractAttributes)
			a.PutStr(attrSpecNodeID, "checkout:flow:PlaceOrder")
			a.PutStr(attrContext, "checkout")
			a.PutStr(attrMatchType, "deterministic")
			a.PutDouble(attrConfidence, 1)
			a.PutStr(attrCorrelationState, "ok")
			a.PutDouble(attrDriftScore, 0)
			a.PutStr(attrDriftLevel, "none")
			a.PutStr(attrDriftClass, "none")
			a.PutEmptySlice(attrDriftKinds)
			a.PutEmptySlice(attrRuleIDs).AppendEmpty().SetStr("bind.span_name")
			a.PutStr(attrEvidenceID, evidence[row])
			a.PutStr(attrSpecVersion, "226160b9b3acaef46e89f263b2ed1a95da90c82bfc19709ab12de488c47e43cf")
		}
	})
}

func BenchmarkApplyTraces8192(b *testing.B) { benchmarkApply(b, benchTraces()) }

// benchmarkApply writes the fake sidecar's annotations onto a fresh copy of td per iteration.
func benchmarkApply(b *testing.B, td ptrace.Traces) {
	chunks := projectAll(b, newSpanBatch(td))
	rows, problem := readRequest(chunks[0].req)
	require.Empty(b, problem)
	resp, err := checkResponse(annotate(chunks[0].req, rows), benchItems, len(fakeDriftKinds))
	require.NoError(b, err)
	loopPerItem(b, func(cpu *cpuMeter) {
		var src *spanBatch
		untimed(b, cpu, func() { src = newSpanBatch(copyTraces(td)) })
		newAnnotator(fakeDriftKinds).apply(resp, src, nil)
	})
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

	loopPerItem(b, func(cpu *cpuMeter) {
		var work ptrace.Traces
		untimed(b, cpu, func() { work = copyTraces(td) })
		require.NoError(b, p.ConsumeTraces(context.Background(), work))
	})
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
	loopPerItem(b, func(cpu *cpuMeter) {
		releaseAll(projectAll(b, newLogBatch(ld)))
	})
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
	loopPerItem(b, func(cpu *cpuMeter) {
		releaseAll(projectAll(b, newPointBatch(md)))
	})
}

var _ = behaviorpb.Signal_SIGNAL_SPANS

// rawSidecar answers Correlate instantly with fixed response bytes, without decoding the
// request, so that a benchmark through it measures the processor's side of a round trip
// (projection, marshalling, loopback, unmarshalling the answer, applying it) and not the
// fake's protobuf work.
type rawSidecar struct {
	behaviorpb.UnimplementedBehaviorCorrelationServer
}

func (rawSidecar) Hello(context.Context, *behaviorpb.HelloRequest) (*behaviorpb.HelloResponse, error) {
	return &behaviorpb.HelloResponse{ProtocolVersion: protocolVersion, SpecVersion: "spec-hash-1",
		Projection: &behaviorpb.Projection{Version: 1, AllAttributes: true}, DriftKindNames: fakeDriftKinds}, nil
}

func (rawSidecar) Correlate(context.Context, *behaviorpb.CorrelateRequest) (*behaviorpb.CorrelateResponse, error) {
	return &behaviorpb.CorrelateResponse{}, nil // rawCodec writes the fixed bytes instead
}

// rawCodec is the proto codec, except that it skips decoding CorrelateRequests and encodes
// every CorrelateResponse as `response`.
type rawCodec struct {
	encoding.CodecV2
	response []byte
}

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if _, ok := v.(*behaviorpb.CorrelateResponse); ok {
		return mem.BufferSlice{mem.SliceBuffer(c.response)}, nil
	}
	return c.CodecV2.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(*behaviorpb.CorrelateRequest); ok {
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// BenchmarkBatchLatencyTraces8192 is the latency one 8192-span batch gains from the
// processor, end to end through ConsumeTraces with a sidecar on loopback that answers
// instantly; it reports the median and the 99th percentile per batch (the goal is p99 <=
// 20 ms) and the processor's CPU time per span.
func BenchmarkBatchLatencyTraces8192(b *testing.B) {
	td := benchTraces()
	chunks := projectAll(b, newSpanBatch(td))
	rows, problem := readRequest(chunks[0].req)
	require.Empty(b, problem)
	answer, err := proto.Marshal(annotate(chunks[0].req, rows))
	require.NoError(b, err)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20),
		grpc.ForceServerCodecV2(rawCodec{CodecV2: encoding.GetCodecV2("proto"), response: answer}))
	behaviorpb.RegisterBehaviorCorrelationServer(srv, rawSidecar{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	tt := componenttest.NewTelemetry()
	defer func() { require.NoError(b, tt.Shutdown(context.Background())) }()
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	p, err := NewFactory().CreateTraces(context.Background(), set, testConfig(lis.Addr().String()), consumertest.NewNop())
	require.NoError(b, err)
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()

	var latencies []time.Duration
	loopPerItem(b, func(cpu *cpuMeter) {
		var work ptrace.Traces
		untimed(b, cpu, func() { work = copyTraces(td) })
		began := time.Now()
		require.NoError(b, p.ConsumeTraces(context.Background(), work))
		latencies = append(latencies, time.Since(began))
	})
	slices.Sort(latencies)
	at := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	require.Zero(b, counter(&testing.T{}, tt, "items_unannotated", ""))
	require.Equal(b, int64(len(latencies)*benchItems), counter(&testing.T{}, tt, "items_annotated", ""))
}

// loopPerItem runs body in the benchmark loop with allocations reported and the process CPU
// per item (GC included) measured around the loop; body may pause the meter (and the timer)
// around set-up that is not part of the measure.
func loopPerItem(b *testing.B, body func(cpu *cpuMeter)) {
	b.ReportAllocs()
	var cpu cpuMeter
	cpu.start()
	for b.Loop() {
		body(&cpu)
	}
	cpu.stop()
	reportPerItem(b, &cpu)
}

// untimed runs f with the benchmark timer and the CPU meter paused (per-iteration set-up).
func untimed(b *testing.B, cpu *cpuMeter, f func()) {
	b.StopTimer()
	cpu.stop()
	f()
	cpu.start()
	b.StartTimer()
}

// copyTraces is a fresh copy of td, so every iteration annotates unannotated spans.
func copyTraces(td ptrace.Traces) ptrace.Traces {
	work := ptrace.NewTraces()
	td.CopyTo(work)
	return work
}
