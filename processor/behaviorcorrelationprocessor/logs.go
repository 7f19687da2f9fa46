package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

func (p *correlationProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	if !p.enabled || ld.LogRecordCount() == 0 {
		return ld, nil
	}
	return ld, p.correlate(ctx, newLogBatch(ld))
}

// logBatch is the log records of a plog.Logs in document order (resource -> scope -> record).
type logBatch struct {
	resourceLogs plog.ResourceLogsSlice
	records      []plog.LogRecord
	resources    []int32
}

func newLogBatch(ld plog.Logs) *logBatch {
	n := ld.LogRecordCount()
	b := &logBatch{resourceLogs: ld.ResourceLogs(), records: make([]plog.LogRecord, 0, n), resources: make([]int32, 0, n)}
	for i := 0; i < b.resourceLogs.Len(); i++ {
		scopes := b.resourceLogs.At(i).ScopeLogs()
		for j := 0; j < scopes.Len(); j++ {
			records := scopes.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				b.records = append(b.records, records.At(k))
				b.resources = append(b.resources, int32(i))
			}
		}
	}
	return b
}

func (b *logBatch) signal() behaviorpb.Signal { return behaviorpb.Signal_SIGNAL_LOGS }
func (b *logBatch) rowCount() int             { return len(b.records) }
func (b *logBatch) resourceOf(row int) int32  { return b.resources[row] }
func (b *logBatch) units() [][]int32          { return nil }

func (b *logBatch) resourceAttributes(r int32) pcommon.Map {
	return b.resourceLogs.At(int(r)).Resource().Attributes()
}

func (b *logBatch) itemAttributes(row int) pcommon.Map { return b.records[row].Attributes() }

func (b *logBatch) encodeRow(e *encoder, row int) {
	r := b.records[row]
	traceID, spanID := r.TraceID(), r.SpanID()
	e.putBytes(colTraceID, traceID[:])
	e.putBytes(colSpanID, spanID[:])
	// A record without an event time is placed at the time the collector saw it.
	t := r.Timestamp()
	if t == 0 {
		t = r.ObservedTimestamp()
	}
	e.putI64(colStart, int64(t))
	e.putU8(colSeverity, uint8(r.SeverityNumber()))
	e.putU32(colEventName, e.code(r.EventName()))
	e.putU32(colBody, e.bodyCode(r.Body()))
	e.itemAttributes(r.Attributes())
}
