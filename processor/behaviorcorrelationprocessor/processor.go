package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/metadata"
)

// Why items went on unannotated (the `reason` attribute of the self-metrics).
const (
	reasonTimeout         = "timeout"
	reasonUnavailable     = "unavailable"
	reasonRejected        = "rejected"
	reasonBadResponse     = "bad_response"
	reasonVersionMismatch = "version_mismatch"
	reasonTooLarge        = "too_large"
)

var reasonAttributes = func() map[string]metric.MeasurementOption {
	m := map[string]metric.MeasurementOption{}
	for _, r := range []string{reasonTimeout, reasonUnavailable, reasonRejected, reasonBadResponse, reasonVersionMismatch, reasonTooLarge} {
		m[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return m
}()

// batch is one incoming batch of a signal, as rows in document order.
type batch interface {
	source
	signal() behaviorpb.Signal
	// itemAttributes is where row's annotations go.
	itemAttributes(row int) pcommon.Map
	// units are groups of rows to keep in one request when they fit (a span batch's traces);
	// nil when every row stands alone.
	units() [][]int32
}

// correlationProcessor is one instance of the processor (one per signal pipeline).
type correlationProcessor struct {
	cfg       *Config
	logger    *zap.Logger
	enabled   bool
	client    *sidecarClient
	telemetry *metadata.TelemetryBuilder
	warn      *throttle
}

func newCorrelationProcessor(set processor.Settings, cfg *Config, signal string, enabled bool) (*correlationProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("otelcol %s %s/%s", set.BuildInfo.Version, set.ID, signal)
	return &correlationProcessor{
		cfg:       cfg,
		logger:    set.Logger,
		enabled:   enabled,
		client:    newSidecarClient(cfg, set.Logger, name),
		telemetry: tb,
		warn:      newThrottle(10 * time.Second),
	}, nil
}

func (p *correlationProcessor) start(ctx context.Context, _ component.Host) error {
	if !p.enabled {
		return nil
	}
	return p.client.start(ctx)
}

func (p *correlationProcessor) shutdown(context.Context) error {
	p.telemetry.Shutdown()
	return p.client.shutdown()
}

// chunk is one request of a batch and what became of it.
type chunk struct {
	enc *encoder
	req *behaviorpb.CorrelateRequest
	// rows maps request rows to batch rows; nil when request row i is batch row i.
	rows   []int32
	resp   *response
	reason string
	err    error
}

// correlate sends the batch to the sidecar in chunks and writes the annotations that come
// back. The error is non-nil only in failure_mode closed, when some items were not annotated.
func (p *correlationProcessor) correlate(ctx context.Context, b batch) error {
	n := b.rowCount()
	sess, reason := p.client.ready(ctx)
	if sess == nil {
		p.countUnannotated(ctx, reason, n)
		return p.failure(n, n, reason, nil)
	}

	// One deadline for the whole batch: every chunk's wait for a slot and its call end by
	// it, so a batch holds the pipeline for at most one timeout however many chunks it has.
	calls, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	// Chunks are sent as soon as they are built and applied as their answers come back, so
	// the sidecar correlates one chunk while the processor writes the annotations of another.
	// The goroutines hand their chunk over after their call ended (its slot released).
	answered := make(chan *chunk)
	sent := 0
	dispatch := func(c *chunk) {
		sent++
		go func() {
			p.send(calls, sess, c)
			answered <- c
		}()
	}
	tooLarge := plan(b, sess.projection, sess.maxRequestBytes, requestRows, dispatch)
	if len(tooLarge) > 0 {
		p.countUnannotated(ctx, reasonTooLarge, len(tooLarge))
		p.warn.log(p.logger, reasonTooLarge, zapcore.WarnLevel, "Items larger than max_message_bytes on their own pass unannotated",
			zap.Int("items", len(tooLarge)), zap.Int("max_message_bytes", sess.maxRequestBytes))
	}

	a := newAnnotator(sess.driftKinds)
	failed, annotated := 0, 0
	var firstErr error
	var firstReason string
	for range sent {
		c := <-answered
		rows := int(c.req.GetRows())
		switch {
		case c.resp == nil:
			failed += rows
			if firstErr == nil {
				firstErr, firstReason = c.err, c.reason
			}
		case p.cfg.FailureMode == FailureModeClosed && firstErr != nil:
			// The batch is refused anyway: write no more onto it. (Chunks applied before the
			// failure came back stay annotated; a retry replaces their behavior.* attributes.)
		default:
			a.apply(c.resp, b, c.rows)
			annotated += rows
		}
		c.enc.release()
	}
	if firstErr != nil && p.cfg.FailureMode == FailureModeClosed {
		return p.failure(n, failed, firstReason, firstErr)
	}
	if annotated > 0 {
		p.telemetry.ProcessorBehaviorcorrelationItemsAnnotated.Add(ctx, int64(annotated))
	}
	return nil
}

// failure is the error failure_mode closed returns for `failed` of `n` items, nil when open.
func (p *correlationProcessor) failure(n, failed int, reason string, err error) error {
	if p.cfg.FailureMode != FailureModeClosed {
		return nil
	}
	msg := fmt.Sprintf("behaviorcorrelation: %d of %d items not annotated (%s), failure_mode is closed", failed, n, reason)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return errors.New(msg)
}

// requestRows is how many rows a request holds when the batch has more: a larger batch goes
// out in several requests so that the sidecar's work on one overlaps the processor's writing
// of another's annotations. Not smaller: each request costs the sidecar a fixed ~3-4 ms
// (2,048-row requests tripled its CPU per span in the collector benchmark), so an
// 8192-span batch, the size the batch processor sends by default, stays one request. A trace
// larger than this still goes whole in one request.
const requestRows = 8192

// plan cuts the batch into requests of about rowTarget rows under limit bytes and hands each
// to dispatch as soon as it is built; it returns the rows that do not fit in a request even
// alone.
//
// A batch of at most rowTarget rows is tried as one request first, in document order; that
// costs one pass. Otherwise, or when it does not fit, the rows are packed unit by unit (a span
// batch's traces, else single rows): a unit goes into the current request when it fits, else
// opens a new one, and a unit too large for any request is packed row by row. Within a
// request rows then follow their units; the resource of each run of rows is sent again where
// it changes.
func plan(b batch, proj *projection, limit, rowTarget int, dispatch func(*chunk)) []int32 {
	n := b.rowCount()
	if n <= rowTarget {
		e := newEncoder(b.signal(), proj, n)
		e.grow(n)
		fits := true
		for row := 0; row < n; row++ {
			e.addRow(b, row)
			if e.size() > limit {
				fits = false
				break
			}
		}
		if fits {
			dispatch(&chunk{enc: e, req: e.request()})
			return nil
		}
		e.release()
	}

	hint := min(n, rowTarget)
	pk := &packer{src: b, proj: proj, limit: limit, rowTarget: rowTarget, dispatch: dispatch, rowsHint: hint}
	pk.e = pk.newEncoder()
	if units := b.units(); units != nil {
		for _, u := range units {
			pk.add(u)
		}
	} else {
		one := make([]int32, 1)
		for row := 0; row < n; row++ {
			one[0] = int32(row)
			pk.add(one)
		}
	}
	pk.flush()
	pk.e.release()
	return pk.tooLarge
}

// packer fills requests unit by unit (see plan).
type packer struct {
	src       batch
	proj      *projection
	limit     int
	rowTarget int
	dispatch  func(*chunk)
	rowsHint  int

	e        *encoder
	tooLarge []int32
}

func (pk *packer) newEncoder() *encoder {
	e := newEncoder(pk.src.signal(), pk.proj, pk.rowsHint)
	e.grow(pk.rowsHint)
	return e
}

func (pk *packer) add(unit []int32) {
	if pk.tryAdd(unit) {
		return
	}
	if len(pk.e.rows) > 0 {
		pk.flush()
		if pk.tryAdd(unit) {
			return
		}
	}
	if len(unit) == 1 {
		pk.tooLarge = append(pk.tooLarge, unit[0])
		return
	}
	for i := range unit { // a trace larger than a request: its rows go one by one
		pk.add(unit[i : i+1])
	}
}

// tryAdd adds every row of the unit, or none when they do not fit (in bytes, or in rows when
// the request already has some).
func (pk *packer) tryAdd(unit []int32) bool {
	if len(pk.e.rows) > 0 && len(pk.e.rows)+len(unit) > pk.rowTarget {
		return false
	}
	m := pk.e.mark()
	for _, row := range unit {
		pk.e.addRow(pk.src, int(row))
		if pk.e.size() > pk.limit {
			pk.e.rollback(m)
			return false
		}
	}
	return true
}

// flush sends the current request, if it has rows, and starts a new one.
func (pk *packer) flush() {
	if len(pk.e.rows) == 0 {
		return
	}
	pk.dispatch(&chunk{enc: pk.e, req: pk.e.request(), rows: pk.e.rows})
	pk.e = pk.newEncoder()
}

// send makes one Correlate call by ctx's deadline (the batch's; waiting for an in-flight slot included)
// and records the outcome on the chunk and in the self-metrics.
func (p *correlationProcessor) send(ctx context.Context, sess *session, c *chunk) {
	rows := int(c.req.GetRows())
	began := time.Now()
	if !p.client.acquire(ctx) {
		p.fail(ctx, c, reasonTimeout, fmt.Errorf("no in-flight slot within %s (max_inflight %d)", p.cfg.Timeout, p.cfg.MaxInflight))
		return
	}
	defer p.client.release()

	p.telemetry.ProcessorBehaviorcorrelationRequestsSent.Add(ctx, 1)
	p.telemetry.ProcessorBehaviorcorrelationRequestBytes.Add(ctx, int64(proto.Size(c.req)))
	resp, err := p.client.rpc.Correlate(ctx, c.req)
	if err != nil {
		st, _ := status.FromError(err)
		switch {
		case st.Code() == codes.DeadlineExceeded || errors.Is(ctx.Err(), context.DeadlineExceeded):
			p.fail(ctx, c, reasonTimeout, err)
		case st.Code() == codes.Unavailable || st.Code() == codes.Canceled:
			p.fail(ctx, c, reasonUnavailable, err)
		case st.Code() == codes.FailedPrecondition:
			p.client.forget(sess)
			p.fail(ctx, c, reasonVersionMismatch, err)
		default:
			p.recordDuration(ctx, began)
			p.fail(ctx, c, reasonRejected, err)
		}
		return
	}
	p.recordDuration(ctx, began)
	if resp.GetProjection() != nil {
		p.client.useProjection(resp.GetProjection())
	}
	checked, err := checkResponse(resp, rows, len(sess.driftKinds))
	if err != nil {
		p.fail(ctx, c, reasonBadResponse, fmt.Errorf("bad response from the sidecar: %w", err))
		return
	}
	c.resp = checked
}

func (p *correlationProcessor) recordDuration(ctx context.Context, began time.Time) {
	p.telemetry.ProcessorBehaviorcorrelationRequestDuration.Record(ctx, time.Since(began).Seconds())
}

// fail records a chunk that produced no annotations.
func (p *correlationProcessor) fail(ctx context.Context, c *chunk, reason string, err error) {
	c.reason, c.err = reason, err
	attrs := reasonAttributes[reason]
	p.telemetry.ProcessorBehaviorcorrelationRequestsFailed.Add(ctx, 1, attrs)
	if reason == reasonTimeout {
		p.telemetry.ProcessorBehaviorcorrelationRequestsTimedOut.Add(ctx, 1)
	}
	p.countUnannotated(ctx, reason, int(c.req.GetRows()))
	level := zapcore.WarnLevel
	if reason == reasonBadResponse || reason == reasonVersionMismatch {
		level = zapcore.ErrorLevel
	}
	p.warn.log(p.logger, reason, level, "A Correlate request produced no annotations; its items pass unannotated unless failure_mode is closed",
		zap.String("reason", reason), zap.Uint32("rows", c.req.GetRows()), zap.Error(err))
}

func (p *correlationProcessor) countUnannotated(ctx context.Context, reason string, items int) {
	p.telemetry.ProcessorBehaviorcorrelationItemsUnannotated.Add(ctx, int64(items), reasonAttributes[reason])
}
