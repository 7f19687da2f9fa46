package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestParsePhases(t *testing.T) {
	got, err := parsePhases("4:20s, 1:500ms")
	if err != nil || len(got) != 2 || got[0] != (phase{4, 20 * time.Second}) || got[1] != (phase{1, 500 * time.Millisecond}) {
		t.Fatalf("parsePhases = %v, %v", got, err)
	}
	for _, bad := range []string{"", "4", "0:1s", "x:1s", "2:-1s", "2:soon"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("parsePhases(%q) accepted", bad)
		}
	}
}

func TestBuildBatchTilesTemplatesIntoExactlyNSpans(t *testing.T) {
	td := buildBatch([]traceTemplate{builtinCheckout()}, 100)
	if td.SpanCount() != 100 {
		t.Fatalf("SpanCount = %d, want 100", td.SpanCount())
	}
	stampBatch(td, 0xCAFE, 7)
	traces := map[[16]byte]int{}
	spanIDs := map[[8]byte]bool{}
	eachSpan(td, func(s ptrace.Span) {
		tid := s.TraceID()
		if binary.BigEndian.Uint32(tid[0:4]) != 0xCAFE || binary.BigEndian.Uint32(tid[4:8]) != 7 {
			t.Fatalf("trace id %x does not carry nonce and batch number", tid)
		}
		traces[tid]++
		if spanIDs[s.SpanID()] {
			t.Fatalf("span id %x repeats", s.SpanID())
		}
		spanIDs[s.SpanID()] = true
		if s.EndTimestamp() < s.StartTimestamp() {
			t.Fatalf("span ends before it starts")
		}
	})
	per := len(builtinCheckout().Spans)
	if want := (100 + per - 1) / per; len(traces) != want {
		t.Fatalf("%d traces, want %d", len(traces), want)
	}
}

func TestSinkCompletesABatchWhenAllItsSpansArrive(t *testing.T) {
	const nonce, n, size = 0xBEEF, 3, 20
	tr := newTracker(size)
	done := tr.expect(n)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	newSink(nonce, tr, "behavior.correlation_status").register(srv)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	td := buildBatch([]traceTemplate{builtinCheckout()}, size)
	stampBatch(td, nonce, n)
	marked := 0
	eachSpan(td, func(s ptrace.Span) {
		if marked < 5 {
			s.Attributes().PutStr("behavior.correlation_status", "ok")
			marked++
		}
	})
	// Deliver the batch in two parts, as a re-batching collector might.
	first, second := ptrace.NewTraces(), ptrace.NewTraces()
	td.ResourceSpans().At(0).CopyTo(first.ResourceSpans().AppendEmpty())
	for i := 1; i < td.ResourceSpans().Len(); i++ {
		td.ResourceSpans().At(i).CopyTo(second.ResourceSpans().AppendEmpty())
	}
	ctx := context.Background()
	if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(first)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("batch completed before all its spans arrived")
	default:
	}
	if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(second)); err != nil {
		t.Fatal(err)
	}
	select {
	case annotated := <-done:
		if annotated != marked {
			t.Fatalf("annotated = %d, want %d", annotated, marked)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("batch never completed")
	}
}

// TestScanExportCountsWhatPdataSees checks the sink's wire scan against a pdata decode of the
// same request: spans of another run and keys only on events or resources do not count.
func TestScanExportCountsWhatPdataSees(t *testing.T) {
	const nonce, key = 0xF00D, "behavior.correlation_status"
	td := buildBatch([]traceTemplate{builtinCheckout()}, 60)
	stampBatch(td, nonce, 9)
	other := buildBatch([]traceTemplate{builtinCheckout()}, 7)
	stampBatch(other, nonce+1, 9)
	other.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	i := 0
	eachSpan(td, func(s ptrace.Span) {
		switch i % 4 {
		case 0:
			s.Attributes().PutStr(key, "ok")
		case 1:
			s.Events().AppendEmpty().Attributes().PutStr(key, "not the span's")
		case 2:
			s.Attributes().PutStr(key+".suffix", "a longer key")
		}
		i++
	})
	td.ResourceSpans().At(0).Resource().Attributes().PutStr(key, "resource, not span")
	want := map[uint32]arrival{}
	eachSpan(td, func(s ptrace.Span) {
		tid := s.TraceID()
		if binary.BigEndian.Uint32(tid[0:4]) != nonce {
			return
		}
		c := want[binary.BigEndian.Uint32(tid[4:8])]
		c.spans++
		if _, ok := s.Attributes().Get(key); ok {
			c.annotated++
		}
		want[binary.BigEndian.Uint32(tid[4:8])] = c
	})
	wire, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	got, err := scanExport(wire, nonce, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[9] != want[9] || want[9].spans != 60 || want[9].annotated != 15 {
		t.Fatalf("scanExport = %v, pdata says %v (want 60 spans, 15 annotated)", got, want)
	}
	if _, err := scanExport(wire[:len(wire)-3], nonce, []byte(key)); err == nil {
		t.Fatal("a truncated request scanned without error")
	}
}

func TestPreAnnotateWritesTheTwelveContractAttributes(t *testing.T) {
	td := buildBatch([]traceTemplate{builtinCheckout()}, 30)
	preAnnotate(td)
	eachSpan(td, func(s ptrace.Span) {
		n := 0
		for k := range s.Attributes().All() {
			if len(k) > 9 && k[:9] == "behavior." {
				n++
			}
		}
		ev, _ := s.Attributes().Get("behavior.evidence_id")
		sid := s.SpanID()
		if n != 12 || ev.Str() != hex.EncodeToString(sid[:]) {
			t.Fatalf("span %s: %d behavior.* attributes, evidence_id %q", s.Name(), n, ev.Str())
		}
	})
}
