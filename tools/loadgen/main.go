// Command loadgen drives a collector with OTLP/gRPC span batches at the highest rate it can
// take and measures what comes out the other side.
//
// It sends batches of --batch-spans spans, built from trace templates (--shapes, JSON), in
// measured phases (--phases SENDERS:DURATION,...), each after a warm-up. With --sink it also
// runs a tiny OTLP/gRPC trace receiver that the collector's otlp_grpc exporter points at: a
// batch counts as delivered when all of its spans have arrived there, and its end-to-end
// latency is the time from the start of its Export call until then. Each sender keeps one
// batch outstanding end to end, so the rate is what the whole pipeline sustains, not how fast
// queues fill. Start it before the collector: the sink is then up when the collector's
// exporter first connects (a refused first connection costs seconds of gRPC back-off), and
// the load generator waits (--wait-target) for the collector to listen.
//
// Batch numbers travel in the trace ids (bytes 0-3 run nonce, 4-7 batch sequence), so the sink
// attributes spans to batches however the collector re-batches them.
//
// The report is one JSON object on stdout (or --out).
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the collector's otlp_grpc exporter compresses by default
)

type options struct {
	target      string
	sink        string
	shapes      string
	out         string
	phases      []phase
	warmup      time.Duration
	waitTarget  time.Duration
	batchSpans  int
	sinkTimeout time.Duration
	annotation  string
	preAnnotate bool
	maxMsgBytes int
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.target, "target", "127.0.0.1:4317", "collector OTLP/gRPC endpoint")
	fs.StringVar(&o.sink, "sink", "", "listen address of the built-in OTLP/gRPC sink (empty: no sink; latency is then the Export call's)")
	fs.StringVar(&o.shapes, "shapes", "", "JSON file with trace templates (empty: a built-in checkout trace)")
	fs.StringVar(&o.out, "out", "", "write the JSON report here instead of stdout")
	phases := fs.String("phases", "4:20s", "comma-separated SENDERS:DURATION measured phases, run in order; each sender keeps one batch outstanding")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "sending time before each phase's measurement (not reported)")
	fs.DurationVar(&o.waitTarget, "wait-target", 60*time.Second, "wait this long for the target to accept connections")
	fs.IntVar(&o.batchSpans, "batch-spans", 8192, "spans per Export request")
	fs.DurationVar(&o.sinkTimeout, "sink-timeout", 10*time.Second, "a batch not complete at the sink by then counts as lost")
	fs.StringVar(&o.annotation, "annotation-key", "behavior.correlation_status", "span attribute that marks an annotated span (counted at the sink)")
	fs.BoolVar(&o.preAnnotate, "pre-annotate", false, "send spans that already carry the 12 behavior.* contract attributes (what carrying annotated spans costs a collector without the processor)")
	fs.IntVar(&o.maxMsgBytes, "max-recv-bytes", 256<<20, "sink's gRPC max receive message size")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.batchSpans < 1 {
		return o, errors.New("batch-spans must be positive")
	}
	var err error
	o.phases, err = parsePhases(*phases)
	return o, err
}

// phase is one measured period: how many senders, for how long.
type phase struct {
	senders  int
	duration time.Duration
}

func parsePhases(spec string) ([]phase, error) {
	var out []phase
	for _, part := range strings.Split(spec, ",") {
		senders, dur, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err1 := strconv.Atoi(senders)
		d, err2 := time.ParseDuration(dur)
		if !ok || err1 != nil || err2 != nil || n < 1 || d <= 0 {
			return nil, fmt.Errorf("phase %q is not SENDERS:DURATION (e.g. 4:20s)", part)
		}
		out = append(out, phase{senders: n, duration: d})
	}
	return out, nil
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	templates, err := loadTemplates(o.shapes)
	if err != nil {
		return err
	}
	var nonceBytes [4]byte
	if _, err := rand.Read(nonceBytes[:]); err != nil {
		return err
	}
	nonce := binary.BigEndian.Uint32(nonceBytes[:])

	tracker := newTracker(o.batchSpans)
	var sinkServer *grpc.Server
	if o.sink != "" {
		lis, err := net.Listen("tcp", o.sink)
		if err != nil {
			return fmt.Errorf("sink listen %s: %w", o.sink, err)
		}
		sinkServer = grpc.NewServer(grpc.MaxRecvMsgSize(o.maxMsgBytes), grpc.ForceServerCodec(rawCodec{}))
		newSink(nonce, tracker, o.annotation).register(sinkServer)
		go func() { _ = sinkServer.Serve(lis) }()
		defer sinkServer.Stop()
		fmt.Fprintf(os.Stderr, "loadgen: sink listening on %s\n", lis.Addr())
	}

	conn, err := grpc.NewClient(o.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.target, err)
	}
	defer conn.Close()
	if err := waitForTarget(ctx, o.target, o.waitTarget); err != nil {
		return err
	}
	client := ptraceotlp.NewGRPCClient(conn)
	fmt.Fprintf(os.Stderr, "loadgen: %d templates, %d spans/batch -> %s, phases %v, warmup %s each\n",
		len(templates), o.batchSpans, o.target, o.phases, o.warmup)

	var seq atomic.Uint32
	reports := make([]map[string]any, 0, len(o.phases))
	for _, ph := range o.phases {
		reports = append(reports, runPhase(ctx, o, ph, client, templates, nonce, &seq, tracker))
		if ctx.Err() != nil {
			break
		}
	}
	return writeReport(o, map[string]any{
		"target":         o.target,
		"batch_spans":    o.batchSpans,
		"delivery":       map[bool]string{true: "sink", false: "export-call"}[o.sink != ""],
		"annotation_key": o.annotation,
		"pre_annotated":  o.preAnnotate,
		"phases":         reports,
	})
}

func waitForTarget(ctx context.Context, target string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("target %s did not accept connections within %s: %w", target, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runPhase(ctx context.Context, o options, ph phase, client ptraceotlp.GRPCClient,
	templates []traceTemplate, nonce uint32, seq *atomic.Uint32, tr *tracker,
) map[string]any {
	measureFrom := time.Now().Add(o.warmup)
	deadline := measureFrom.Add(ph.duration)
	stats := make([]*workerStats, ph.senders)
	var wg sync.WaitGroup
	for w := range ph.senders {
		stats[w] = &workerStats{}
		batch := buildBatch(templates, o.batchSpans)
		if o.preAnnotate {
			preAnnotate(batch)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, o, client, batch, nonce, seq, tr, measureFrom, deadline, stats[w])
		}()
	}
	wg.Wait()
	// The window ends when the last measured batch is delivered, so batches started before
	// the deadline and finished after it are counted with the time they took.
	return summarize(ph, stats, time.Since(measureFrom))
}

type workerStats struct {
	batches, spans, errors, lost int
	annotated, delivered         int64
	rpcLatencies, e2eLatencies   []time.Duration
	lastError                    string
}

func worker(ctx context.Context, o options, client ptraceotlp.GRPCClient, batch ptrace.Traces,
	nonce uint32, seq *atomic.Uint32, tracker *tracker, measureFrom, deadline time.Time, st *workerStats,
) {
	req := ptraceotlp.NewExportRequestFromTraces(batch)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		n := seq.Add(1)
		stampBatch(batch, nonce, n)
		var done chan int
		if o.sink != "" {
			done = tracker.expect(n)
		}
		t0 := time.Now()
		callCtx, cancel := context.WithTimeout(ctx, o.sinkTimeout)
		_, err := client.Export(callCtx, req)
		cancel()
		rpc := time.Since(t0)
		measured := t0.After(measureFrom)
		if err != nil {
			tracker.forget(n)
			if measured {
				st.errors++
				st.lastError = err.Error()
			}
			time.Sleep(10 * time.Millisecond) // refused (memory limiter) or down: do not spin
			continue
		}
		annotated := 0
		if done != nil {
			select {
			case annotated = <-done:
			case <-time.After(o.sinkTimeout):
				tracker.forget(n)
				if measured {
					st.lost++
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		if !measured {
			continue
		}
		st.batches++
		st.spans += o.batchSpans
		st.rpcLatencies = append(st.rpcLatencies, rpc)
		if done != nil {
			st.e2eLatencies = append(st.e2eLatencies, time.Since(t0))
			st.delivered += int64(o.batchSpans)
			st.annotated += int64(annotated)
		}
	}
}

// stampBatch gives every trace in the batch a fresh id carrying (nonce, batch number) and
// moves the timestamps to now, keeping each span's offset and duration.
func stampBatch(batch ptrace.Traces, nonce, n uint32) {
	now := uint64(time.Now().UnixNano())
	var tid [16]byte
	binary.BigEndian.PutUint32(tid[0:4], nonce)
	binary.BigEndian.PutUint32(tid[4:8], n)
	eachSpan(batch, func(s ptrace.Span) {
		old := s.TraceID()
		copy(tid[8:16], old[8:16]) // trace number inside the batch
		s.SetTraceID(tid)
		dur := uint64(s.EndTimestamp()) - uint64(s.StartTimestamp())
		off := uint64(s.StartTimestamp()) % uint64(time.Second)
		s.SetStartTimestamp(pcommon.Timestamp(now + off))
		s.SetEndTimestamp(pcommon.Timestamp(now + off + dur))
	})
}

func percentiles(ds []time.Duration) map[string]float64 {
	if len(ds) == 0 {
		return nil
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return map[string]float64{
		"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1),
		"mean": float64(sum.Microseconds()) / 1000 / float64(len(s)),
	}
}

func summarize(ph phase, stats []*workerStats, window time.Duration) map[string]any {
	var batches, spans, errs, lost int
	var annotated, delivered int64
	var rpc, e2e []time.Duration
	lastErr := ""
	for _, st := range stats {
		batches += st.batches
		spans += st.spans
		errs += st.errors
		lost += st.lost
		annotated += st.annotated
		delivered += st.delivered
		rpc = append(rpc, st.rpcLatencies...)
		e2e = append(e2e, st.e2eLatencies...)
		if st.lastError != "" {
			lastErr = st.lastError
		}
	}
	elapsed := window.Seconds()
	report := map[string]any{
		"senders":         ph.senders,
		"elapsed_s":       elapsed,
		"batches":         batches,
		"spans":           spans,
		"spans_per_s":     float64(spans) / elapsed,
		"export_errors":   errs,
		"last_error":      lastErr,
		"lost_batches":    lost,
		"rpc_latency_ms":  percentiles(rpc),
		"e2e_latency_ms":  percentiles(e2e),
		"annotated_ratio": 0.0,
	}
	if delivered > 0 {
		report["annotated_ratio"] = float64(annotated) / float64(delivered)
	}
	return report
}

func writeReport(o options, report map[string]any) error {
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if o.out == "" {
		_, err = os.Stdout.Write(data)
		return err
	}
	return os.WriteFile(o.out, data, 0o644)
}
