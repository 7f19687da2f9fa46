package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"context"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

func (p *correlationProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	if !p.enabled || md.DataPointCount() == 0 {
		return md, nil
	}
	return md, p.correlate(ctx, newPointBatch(md))
}

// pointRef is one data point: its metric and its index among the metric's points.
type pointRef struct {
	metric pmetric.Metric
	index  int32
}

// pointBatch is the data points of a pmetric.Metrics in document order
// (resource -> scope -> metric -> point); metrics without data have no rows.
type pointBatch struct {
	resourceMetrics pmetric.ResourceMetricsSlice
	points          []pointRef
	resources       []int32
}

func newPointBatch(md pmetric.Metrics) *pointBatch {
	n := md.DataPointCount()
	b := &pointBatch{resourceMetrics: md.ResourceMetrics(), points: make([]pointRef, 0, n), resources: make([]int32, 0, n)}
	for i := 0; i < b.resourceMetrics.Len(); i++ {
		scopes := b.resourceMetrics.At(i).ScopeMetrics()
		for j := 0; j < scopes.Len(); j++ {
			metrics := scopes.At(j).Metrics()
			for k := 0; k < metrics.Len(); k++ {
				m := metrics.At(k)
				for p := range pointCount(m) {
					b.points = append(b.points, pointRef{metric: m, index: int32(p)})
					b.resources = append(b.resources, int32(i))
				}
			}
		}
	}
	return b
}

func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	default:
		return 0
	}
}

func (b *pointBatch) signal() behaviorpb.Signal { return behaviorpb.Signal_SIGNAL_METRICS }
func (b *pointBatch) rowCount() int             { return len(b.points) }
func (b *pointBatch) resourceOf(row int) int32  { return b.resources[row] }
func (b *pointBatch) units() [][]int32          { return nil }

func (b *pointBatch) resourceAttributes(r int32) pcommon.Map {
	return b.resourceMetrics.At(int(r)).Resource().Attributes()
}

func (b *pointBatch) itemAttributes(row int) pcommon.Map {
	return b.point(row).attributes
}

// pointFields are what the projection reads from a data point of any type.
type pointFields struct {
	time         pcommon.Timestamp
	value        float64
	attributes   pcommon.Map
	exemplars    pmetric.ExemplarSlice
	hasExemplars bool
}

func (b *pointBatch) point(row int) pointFields {
	ref := b.points[row]
	i := int(ref.index)
	switch ref.metric.Type() {
	case pmetric.MetricTypeGauge:
		return numberPoint(ref.metric.Gauge().DataPoints().At(i))
	case pmetric.MetricTypeSum:
		return numberPoint(ref.metric.Sum().DataPoints().At(i))
	case pmetric.MetricTypeHistogram:
		p := ref.metric.Histogram().DataPoints().At(i)
		return pointFields{time: p.Timestamp(), value: pointMean(p.HasSum(), p.Sum(), p.Count()),
			attributes: p.Attributes(), exemplars: p.Exemplars(), hasExemplars: true}
	case pmetric.MetricTypeExponentialHistogram:
		p := ref.metric.ExponentialHistogram().DataPoints().At(i)
		return pointFields{time: p.Timestamp(), value: pointMean(p.HasSum(), p.Sum(), p.Count()),
			attributes: p.Attributes(), exemplars: p.Exemplars(), hasExemplars: true}
	default: // summary; newPointBatch makes no rows for metrics without data
		p := ref.metric.Summary().DataPoints().At(i)
		return pointFields{time: p.Timestamp(), value: pointMean(true, p.Sum(), p.Count()), attributes: p.Attributes()}
	}
}

func numberPoint(p pmetric.NumberDataPoint) pointFields {
	value := math.NaN()
	switch p.ValueType() {
	case pmetric.NumberDataPointValueTypeInt:
		value = float64(p.IntValue())
	case pmetric.NumberDataPointValueTypeDouble:
		value = p.DoubleValue()
	}
	return pointFields{time: p.Timestamp(), value: value, attributes: p.Attributes(), exemplars: p.Exemplars(), hasExemplars: true}
}

// pointMean is a histogram's or summary's value: sum / count, NaN without a sum or a count.
func pointMean(hasSum bool, sum float64, count uint64) float64 {
	if !hasSum || count == 0 {
		return math.NaN()
	}
	return sum / float64(count)
}

func (b *pointBatch) encodeRow(e *encoder, row int) {
	p := b.point(row)
	e.putI64(colStart, int64(p.time))
	e.putU32(colName, e.code(b.points[row].metric.Name()))
	e.putF64(colValue, p.value)
	var traceID pcommon.TraceID
	var spanID pcommon.SpanID
	if p.hasExemplars && p.exemplars.Len() > 0 {
		first := p.exemplars.At(0)
		traceID, spanID = first.TraceID(), first.SpanID()
	}
	e.putBytes(colExemplarTraceID, traceID[:])
	e.putBytes(colExemplarSpanID, spanID[:])
	e.itemAttributes(p.attributes)
}
