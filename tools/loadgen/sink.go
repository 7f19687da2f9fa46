package main

import (
	"context"
	"encoding/binary"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
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

// sink is the OTLP/gRPC trace receiver at the far end of the collector.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	nonce         uint32
	tracker       *tracker
	annotationKey string
}

func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	counts := make(map[uint32]arrival, 4)
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				tid := sp.TraceID()
				if binary.BigEndian.Uint32(tid[0:4]) != s.nonce {
					continue
				}
				n := binary.BigEndian.Uint32(tid[4:8])
				c := counts[n]
				c.spans++
				if _, ok := sp.Attributes().Get(s.annotationKey); ok {
					c.annotated++
				}
				counts[n] = c
			}
		}
	}
	s.tracker.arrived(counts)
	return ptraceotlp.NewExportResponse(), nil
}
