package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// tracker counts the spans of each outstanding batch that reached the sink and, once all of
// them have, sends the number of annotated ones on the batch's channel.
type tracker struct {
	batchSpans int
	mu         sync.Mutex
	pending    map[uint32]*pendingBatch
}

type pendingBatch struct {
	seen, annotated int
	done            chan int
}

// arrival is what one sink request held of one batch.
type arrival struct{ spans, annotated int }

func newTracker(batchSpans int) *tracker {
	return &tracker{batchSpans: batchSpans, pending: make(map[uint32]*pendingBatch)}
}

// expect registers batch n before it is sent (spans can arrive before Export returns).
func (t *tracker) expect(n uint32) chan int {
	done := make(chan int, 1)
	t.mu.Lock()
	t.pending[n] = &pendingBatch{done: done}
	t.mu.Unlock()
	return done
}

func (t *tracker) forget(n uint32) {
	t.mu.Lock()
	delete(t.pending, n)
	t.mu.Unlock()
}

func (t *tracker) arrived(counts map[uint32]arrival) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n, c := range counts {
		b, ok := t.pending[n]
		if !ok {
			continue // given up on, or sent by another run
		}
		b.seen += c.spans
		b.annotated += c.annotated
		if b.seen >= t.batchSpans {
			b.done <- b.annotated
			delete(t.pending, n)
		}
	}
}

// sink is the OTLP/gRPC trace receiver at the far end of the collector. It reads each request
// with protowire instead of decoding it into pdata: a backend's decoding cost is not the
// collector's, and on a small machine a full decode of every exported span (the annotated
// ones more so, with 12 more attributes each) would take CPU from the collector under test
// and add its own time to the measured latency.
type sink struct {
	nonce         uint32
	tracker       *tracker
	annotationKey []byte
}

func newSink(nonce uint32, tr *tracker, annotationKey string) *sink {
	return &sink{nonce: nonce, tracker: tr, annotationKey: []byte(annotationKey)}
}

// register serves the OTLP trace service on srv, which must use rawCodec.
func (s *sink) register(srv *grpc.Server) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Export",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req rawMessage
				if err := dec(&req); err != nil {
					return nil, err
				}
				counts, err := scanExport(req, s.nonce, s.annotationKey)
				if err != nil {
					return nil, status.Errorf(codes.InvalidArgument, "ExportTraceServiceRequest: %v", err)
				}
				s.tracker.arrived(counts)
				return new(rawMessage), nil // an empty ExportTraceServiceResponse
			},
		}},
	}, s)
}

// rawMessage is a message's wire bytes, passed through by rawCodec.
type rawMessage []byte

// rawCodec hands the sink's handler the request bytes as they came (copied: gRPC reuses its
// buffer once Unmarshal returns).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	m := v.(*rawMessage)
	*m = append((*m)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// scanExport counts, per batch of this run, the spans of an ExportTraceServiceRequest and those
// that carry the annotation key.
func scanExport(msg []byte, nonce uint32, key []byte) (map[uint32]arrival, error) {
	counts := make(map[uint32]arrival, 4)
	err := eachBytesField(msg, func(num protowire.Number, resourceSpans []byte) error {
		if num != 1 { // ExportTraceServiceRequest.resource_spans
			return nil
		}
		return eachBytesField(resourceSpans, func(num protowire.Number, scopeSpans []byte) error {
			if num != 2 { // ResourceSpans.scope_spans
				return nil
			}
			return eachBytesField(scopeSpans, func(num protowire.Number, span []byte) error {
				if num != 2 { // ScopeSpans.spans
					return nil
				}
				return countSpan(span, nonce, key, counts)
			})
		})
	})
	return counts, err
}

func countSpan(span []byte, nonce uint32, key []byte, counts map[uint32]arrival) error {
	var traceID []byte
	annotated := false
	err := eachBytesField(span, func(num protowire.Number, v []byte) error {
		switch num {
		case 1: // Span.trace_id
			traceID = v
		case 9: // Span.attributes
			if !annotated {
				return eachBytesField(v, func(num protowire.Number, k []byte) error {
					annotated = annotated || (num == 1 && bytes.Equal(k, key)) // KeyValue.key
					return nil
				})
			}
		}
		return nil
	})
	if err != nil || len(traceID) != 16 || binary.BigEndian.Uint32(traceID[0:4]) != nonce {
		return err
	}
	n := binary.BigEndian.Uint32(traceID[4:8])
	c := counts[n]
	c.spans++
	if annotated {
		c.annotated++
	}
	counts[n] = c
	return nil
}

// eachBytesField calls f with every length-delimited field of msg and skips the others.
func eachBytesField(msg []byte, f func(protowire.Number, []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, v); err != nil {
				return err
			}
			msg = msg[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
	}
	return nil
}
