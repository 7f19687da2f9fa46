package behaviorcorrelationprocessor

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// The encoder's attribute slots and the annotator's templates are caches in front of plain
// computations; these tests drive them through repeats, changes and rollbacks and check every
// row against the plain answer.

// variedTraces are spans whose attributes repeat, rotate, change type and order, and come
// and go, so that the slots hit, miss and get replaced.
func variedTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID(traceID(i / 4))
		sp.SetSpanID(spanID(i/4, i%4))
		sp.SetName(fmt.Sprintf("op-%d", i%5))
		a := sp.Attributes()
		if i%6 == 5 { // another order
			a.PutInt("n", int64(i%3))
			a.PutStr("route", fmt.Sprintf("/r/%d", i%3))
		} else {
			a.PutStr("route", fmt.Sprintf("/r/%d", i%3))
			a.PutInt("n", int64(i%3))
		}
		switch i % 4 { // one position that changes type
		case 0:
			a.PutStr("x", "1")
		case 1:
			a.PutInt("x", 1)
		case 2:
			a.PutDouble("x", 1)
		case 3:
			a.PutBool("x", i%8 == 3)
		}
		a.PutStr("id", fmt.Sprintf("id-%d", i)) // unique
		if i%7 == 0 {
			a.PutStr("rare", "r")
		}
	}
	return td
}

func TestEncoderSlotsGiveTheTablesAnswer(t *testing.T) {
	projections := map[string]*projection{
		"all":  newProjection(nil),
		"some": newProjection(&behaviorpb.Projection{Version: 2, AttributeKeys: []string{"route", "x", "rare"}}),
	}
	for name, proj := range projections {
		// One request; many; and traces larger than a request, whose rows then go one by one
		// into the request that just rolled one back.
		for _, limit := range []int{4 << 20, 2000, 700} {
			t.Run(fmt.Sprintf("%s/%d", name, limit), func(t *testing.T) {
				td := variedTraces(300)
				b := newSpanBatch(td)
				var chunks []*chunk
				require.Empty(t, plan(b, proj, limit, requestRows, func(c *chunk) { chunks = append(chunks, c) }))
				defer releaseAll(chunks)
				seen := 0
				for _, c := range chunks {
					rows, problem := readRequest(c.req)
					require.Empty(t, problem)
					for i, row := range rows {
						batchRow := i
						if c.rows != nil {
							batchRow = int(c.rows[i])
						}
						want := map[string]string{}
						wantTypes := map[string]behaviorpb.ValueType{}
						for k, v := range b.spans[batchRow].Attributes().All() {
							if proj.wants(k) {
								want[k] = string(appendPlainText(nil, v))
								wantTypes[k] = valueType(v)
							}
						}
						assert.Equal(t, want, row.attributes, "row %d", batchRow)
						assert.Equal(t, wantTypes, row.attributeTypes, "row %d", batchRow)
						seen++
					}
				}
				assert.Equal(t, 300, seen)
				if limit < 4<<20 {
					assert.Greater(t, len(chunks), 2)
				}
			})
		}
	}
}

func TestApplyRepeatsAndChanges(t *testing.T) {
	const n = 100 // more than evidenceBlock, not a multiple of it
	td := variedTraces(n)
	b := newSpanBatch(td)
	le := binary.LittleEndian
	strs := []string{"", "node", "ctx", "rule.a", "rule.b"}
	r := &behaviorpb.CorrelateResponse{ProtocolVersion: protocolVersion, SpecVersion: "v9", Rows: n, Strings: strs}
	wantRules := make([][]string, n)
	wantKinds := make([][]string, n)
	for i := range n {
		r.SpecNodeId = le.AppendUint32(r.SpecNodeId, 1)
		r.Context = le.AppendUint32(r.Context, 2)
		r.MatchType = append(r.MatchType, byte(i%3))
		r.Confidence = le.AppendUint32(r.Confidence, math.Float32bits(float32(i/10)/10))
		r.CorrelationStatus = append(r.CorrelationStatus, byte(i%3))
		r.DriftScore = le.AppendUint32(r.DriftScore, math.Float32bits(0.123456))
		r.DriftLevel = append(r.DriftLevel, byte(i%4))
		r.DriftClass = append(r.DriftClass, byte(i%3))
		mask := uint32(i/3) % 8 // runs of equal masks, every combination
		r.DriftKinds = le.AppendUint32(r.DriftKinds, mask)
		for bit, kind := range fakeDriftKinds {
			if mask&(1<<bit) != 0 {
				wantKinds[i] = append(wantKinds[i], kind)
			}
		}
		var codes []uint32
		switch (i / 2) % 4 { // runs of equal lists, the empty one included
		case 1:
			codes = []uint32{3}
		case 2:
			codes = []uint32{3, 4}
		case 3:
			codes = []uint32{4, 3, 3}
		}
		r.RuleCounts = le.AppendUint32(r.RuleCounts, uint32(len(codes)))
		for _, c := range codes {
			r.RuleIds = le.AppendUint32(r.RuleIds, c)
			wantRules[i] = append(wantRules[i], strs[c])
		}
		r.EvidenceId = le.AppendUint64(r.EvidenceId, uint64(i)*0x9e3779b97f4a7c15)
	}
	resp, err := checkResponse(r, n, len(fakeDriftKinds))
	require.NoError(t, err)

	// Half the rows go through a rows map in reverse order, as a chunk of a packed batch.
	a := newAnnotator(fakeDriftKinds)
	a.apply(resp, b, nil)
	reversed := make([]int32, n)
	for i := range reversed {
		reversed[i] = int32(n - 1 - i)
	}
	again := newSpanBatch(variedTraces(n))
	a.apply(resp, again, reversed)

	for i := range n {
		for _, c := range []struct {
			batch *spanBatch
			row   int
		}{{b, i}, {again, n - 1 - i}} {
			attrs := c.batch.spans[c.row].Attributes()
			var id [8]byte
			binary.BigEndian.PutUint64(id[:], uint64(i)*0x9e3779b97f4a7c15)
			assert.Equal(t, hex.EncodeToString(id[:]), str(t, attrs, attrEvidenceID), "row %d", i)
			assert.Equal(t, wantKinds[i], emptyAsNil(strs2(t, attrs, attrDriftKinds)), "row %d", i)
			assert.Equal(t, wantRules[i], emptyAsNil(strs2(t, attrs, attrRuleIDs)), "row %d", i)
			conf, _ := attrs.Get(attrConfidence)
			assert.Equal(t, math.Round(float64(float32(i/10)/10)*1e4)/1e4, conf.Double(), "row %d", i)
			assert.Equal(t, matchTypeNames[i%3], str(t, attrs, attrMatchType))
			assert.Equal(t, "v9", str(t, attrs, attrSpecVersion))
		}
	}

	// The arrays are copies: changing one item's leaves the others alone.
	first := b.spans[6].Attributes()
	kinds, _ := first.Get(attrDriftKinds)
	kinds.Slice().At(0).SetStr("changed")
	rules, _ := first.Get(attrRuleIDs)
	rules.Slice().AppendEmpty().SetStr("added")
	assert.Equal(t, wantKinds[7], strs2(t, b.spans[7].Attributes(), attrDriftKinds))
	assert.Equal(t, wantRules[7], strs2(t, b.spans[7].Attributes(), attrRuleIDs))
	assert.Equal(t, pcommon.ValueTypeSlice, kinds.Type())
}

// strs2 is strs without the requirement that the array is not empty.
func strs2(t *testing.T, attrs pcommon.Map, key string) []string {
	t.Helper()
	v, ok := attrs.Get(key)
	require.True(t, ok, "missing %s", key)
	require.Equal(t, pcommon.ValueTypeSlice, v.Type(), key)
	out := []string{}
	for _, e := range v.Slice().All() {
		out = append(out, e.Str())
	}
	return out
}

func emptyAsNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
