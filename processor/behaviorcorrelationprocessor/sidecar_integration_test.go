package behaviorcorrelationprocessor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestRealSidecar talks to a running Python sidecar (python -m sidecar serve) when
// BEHAVIOR_SIDECAR_ENDPOINT names it; it is skipped otherwise. The sidecar's own answers are
// not known here, so it checks the contract: every span gets the twelve attributes with
// values from the contract's vocabularies, and nothing fails.
func TestRealSidecar(t *testing.T) {
	endpoint := os.Getenv("BEHAVIOR_SIDECAR_ENDPOINT")
	if endpoint == "" {
		t.Skip("set BEHAVIOR_SIDECAR_ENDPOINT=host:port to run against a real sidecar")
	}
	cfg := testConfig(endpoint)
	cfg.Timeout = 5 * time.Second
	cfg.MaxMessageBytes = 64 << 10 // several chunks
	p, sink, tt := newTracesProcessor(t, cfg)
	require.NoError(t, p.ConsumeTraces(context.Background(), makeTraces(200, 6)))
	assert.Zero(t, counter(t, tt, "items_unannotated", ""), "every span annotated")
	assert.Greater(t, counter(t, tt, "requests_sent", ""), int64(1))
	forEachSpan(sink.AllTraces()[0], func(_ string, sp ptrace.Span) {
		a := sp.Attributes()
		assert.Contains(t, matchTypeNames, str(t, a, attrMatchType))
		assert.Contains(t, statusNames, str(t, a, attrCorrelationState))
		assert.Contains(t, driftLevelNames, str(t, a, attrDriftLevel))
		assert.Contains(t, driftClassNames, str(t, a, attrDriftClass))
		assert.Len(t, str(t, a, attrEvidenceID), 16)
		assert.NotEmpty(t, str(t, a, attrSpecVersion))
		strs(t, a, attrDriftKinds)
		strs(t, a, attrRuleIDs)
		conf, ok := a.Get(attrConfidence)
		require.True(t, ok)
		assert.GreaterOrEqual(t, conf.Double(), 0.0)
		assert.LessOrEqual(t, conf.Double(), 1.0)
	})
}

func TestRealSidecarLogsAndMetrics(t *testing.T) {
	endpoint := os.Getenv("BEHAVIOR_SIDECAR_ENDPOINT")
	if endpoint == "" {
		t.Skip("set BEHAVIOR_SIDECAR_ENDPOINT=host:port to run against a real sidecar")
	}
	cfg := testConfig(endpoint)
	cfg.Timeout = 5 * time.Second
	tt := componenttest.NewTelemetry()
	logs := new(consumertest.LogsSink)
	lp, err := NewFactory().CreateLogs(context.Background(), testSettings(tt), cfg, logs)
	require.NoError(t, err)
	metrics := new(consumertest.MetricsSink)
	mp, err := NewFactory().CreateMetrics(context.Background(), testSettings(tt), cfg, metrics)
	require.NoError(t, err)
	for _, c := range []component.Component{lp, mp} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(t, c.Shutdown(context.Background())) }()
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "cartservice")
	for i := range 50 {
		r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		r.SetEventName("cart.item_added")
		r.Body().SetEmptyMap().PutStr("msg", "added")
		r.Attributes().PutStr("user.email", "someone@example.com")
	}
	require.NoError(t, lp.ConsumeLogs(context.Background(), ld))

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkoutservice")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	hp := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	hp.SetSum(1.5)
	hp.SetCount(3)
	hp.SetTimestamp(1_700_000_000_000_000_000)
	require.NoError(t, mp.ConsumeMetrics(context.Background(), md))

	assert.Zero(t, counter(t, tt, "items_unannotated", ""))
	assert.Equal(t, int64(51), counter(t, tt, "items_annotated", ""))
	rec := logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Len(t, str(t, rec.Attributes(), attrEvidenceID), 16)
	dp := metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
	assert.Len(t, str(t, dp.Attributes(), attrEvidenceID), 16)
}
