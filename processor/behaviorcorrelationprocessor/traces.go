package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

func (p *correlationProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	if !p.enabled || td.SpanCount() == 0 {
		return td, nil
	}
	return td, p.correlate(ctx, newSpanBatch(td))
}

// spanBatch is the spans of a ptrace.Traces in document order (resource -> scope -> span);
// it holds references into the batch, not copies.
type spanBatch struct {
	resourceSpans ptrace.ResourceSpansSlice
	spans         []ptrace.Span
	resources     []int32
}

func newSpanBatch(td ptrace.Traces) *spanBatch {
	n := td.SpanCount()
	b := &spanBatch{resourceSpans: td.ResourceSpans(), spans: make([]ptrace.Span, 0, n), resources: make([]int32, 0, n)}
	for i := 0; i < b.resourceSpans.Len(); i++ {
		scopes := b.resourceSpans.At(i).ScopeSpans()
		for j := 0; j < scopes.Len(); j++ {
			spans := scopes.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				b.spans = append(b.spans, spans.At(k))
				b.resources = append(b.resources, int32(i))
			}
		}
	}
	return b
}

func (b *spanBatch) signal() behaviorpb.Signal { return behaviorpb.Signal_SIGNAL_SPANS }
func (b *spanBatch) rowCount() int             { return len(b.spans) }
func (b *spanBatch) resourceOf(row int) int32  { return b.resources[row] }

func (b *spanBatch) resourceAttributes(r int32) pcommon.Map {
	return b.resourceSpans.At(int(r)).Resource().Attributes()
}

func (b *spanBatch) itemAttributes(row int) pcommon.Map { return b.spans[row].Attributes() }

func (b *spanBatch) encodeRow(e *encoder, row int) {
	s := b.spans[row]
	traceID, spanID, parentID := s.TraceID(), s.SpanID(), s.ParentSpanID()
	e.putBytes(colTraceID, traceID[:])
	e.putBytes(colSpanID, spanID[:])
	e.putBytes(colParentSpanID, parentID[:])
	e.putI64(colStart, int64(s.StartTimestamp()))
	e.putI64(colEnd, int64(s.EndTimestamp()))
	e.putU8(colKind, uint8(s.Kind()))
	e.putU8(colStatus, uint8(s.Status().Code()))
	e.putU32(colName, e.code(s.Name()))
	e.itemAttributes(s.Attributes())
}

// units groups the rows by trace, traces in order of first appearance and each trace's rows
// in document order: trace-level checks need a trace's spans in one request.
func (b *spanBatch) units() [][]int32 {
	// Sized for traces of a few spans, so that neither the map nor counts grow row by row.
	index := make(map[pcommon.TraceID]int32, len(b.spans)/4+1)
	unitOf := make([]int32, len(b.spans))
	counts := make([]int32, 0, len(b.spans)/4+1)
	for row, s := range b.spans {
		id := s.TraceID()
		u, ok := index[id]
		if !ok {
			u = int32(len(counts))
			index[id] = u
			counts = append(counts, 0)
		}
		unitOf[row] = u
		counts[u]++
	}
	flat := make([]int32, 0, len(b.spans))
	units := make([][]int32, len(counts))
	for u, c := range counts {
		units[u] = flat[len(flat) : len(flat) : len(flat)+int(c)]
		flat = flat[:len(flat)+int(c)]
	}
	for row, u := range unitOf {
		units[u] = append(units[u], int32(row))
	}
	return units
}
