package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// The contract's attribute names (MISSION.md, "Contract"); the sidecar's replay writes the
// same ones (sidecar/evidence/annotations.py).
const (
	behaviorPrefix       = "behavior."
	attrSpecNodeID       = "behavior.spec_node_id"
	attrContext          = "behavior.context"
	attrMatchType        = "behavior.match_type"
	attrConfidence       = "behavior.confidence"
	attrCorrelationState = "behavior.correlation_status"
	attrDriftScore       = "behavior.drift_score"
	attrDriftLevel       = "behavior.drift_level"
	attrDriftClass       = "behavior.drift_class"
	attrDriftKinds       = "behavior.drift_kinds"
	attrRuleIDs          = "behavior.rule_ids"
	attrEvidenceID       = "behavior.evidence_id"
	attrSpecVersion      = "behavior.spec_version"
	contractAttributes   = 12
)

// The enum columns' names, by number (proto CorrelateResponse).
var (
	matchTypeNames  = []string{"none", "deterministic", "heuristic"}
	statusNames     = []string{"ok", "partial", "failed"}
	driftLevelNames = []string{"none", "low", "medium", "high"}
	driftClassNames = []string{"none", "benign", "semantic"}
)

// response is a CorrelateResponse that checkResponse found well-formed.
type response struct {
	*behaviorpb.CorrelateResponse
	// ruleStart[i] is the index of row i's first rule id.
	ruleStart []uint32
}

// checkResponse validates a response to a request of `rows` rows before anything is written,
// so that a broken response annotates nothing (and is counted) instead of panicking or
// marking items with garbage.
func checkResponse(r *behaviorpb.CorrelateResponse, rows int, driftKinds int) (*response, error) {
	if r.GetProtocolVersion() != protocolVersion {
		return nil, fmt.Errorf("protocol_version %d, want %d", r.GetProtocolVersion(), protocolVersion)
	}
	if int(r.GetRows()) != rows {
		return nil, fmt.Errorf("%d rows for a request of %d", r.GetRows(), rows)
	}
	strs := r.GetStrings()
	if len(strs) == 0 || strs[0] != "" {
		return nil, fmt.Errorf("strings[0] must be the empty string")
	}
	widths := []struct {
		name  string
		col   []byte
		width int
	}{
		{"spec_node_id", r.GetSpecNodeId(), 4}, {"context", r.GetContext(), 4},
		{"match_type", r.GetMatchType(), 1}, {"confidence", r.GetConfidence(), 4},
		{"correlation_status", r.GetCorrelationStatus(), 1}, {"drift_score", r.GetDriftScore(), 4},
		{"drift_level", r.GetDriftLevel(), 1}, {"drift_class", r.GetDriftClass(), 1},
		{"drift_kinds", r.GetDriftKinds(), 4}, {"rule_counts", r.GetRuleCounts(), 4},
		{"evidence_id", r.GetEvidenceId(), 8},
	}
	for _, w := range widths {
		if len(w.col) != rows*w.width {
			return nil, fmt.Errorf("column %s has %d bytes, want %d (%d rows of %d)", w.name, len(w.col), rows*w.width, rows, w.width)
		}
	}
	n := uint32(len(strs))
	if err := checkCodes("spec_node_id", r.GetSpecNodeId(), n); err != nil {
		return nil, err
	}
	if err := checkCodes("context", r.GetContext(), n); err != nil {
		return nil, err
	}
	for _, e := range []struct {
		name  string
		col   []byte
		names []string
	}{
		{"match_type", r.GetMatchType(), matchTypeNames}, {"correlation_status", r.GetCorrelationStatus(), statusNames},
		{"drift_level", r.GetDriftLevel(), driftLevelNames}, {"drift_class", r.GetDriftClass(), driftClassNames},
	} {
		for i, v := range e.col {
			if int(v) >= len(e.names) {
				return nil, fmt.Errorf("row %d: %s %d is not one of 0..%d", i, e.name, v, len(e.names)-1)
			}
		}
	}
	for _, f := range []struct {
		name string
		col  []byte
	}{{"confidence", r.GetConfidence()}, {"drift_score", r.GetDriftScore()}} {
		for i := 0; i < rows; i++ {
			v := math.Float32frombits(binary.LittleEndian.Uint32(f.col[4*i:]))
			if !(v >= 0 && v <= 1) {
				return nil, fmt.Errorf("row %d: %s %v is not within 0..1", i, f.name, v)
			}
		}
	}
	if driftKinds < 32 {
		allowed := uint32(1)<<driftKinds - 1
		kinds := r.GetDriftKinds()
		for i := 0; i < rows; i++ {
			if mask := binary.LittleEndian.Uint32(kinds[4*i:]); mask&^allowed != 0 {
				return nil, fmt.Errorf("row %d: drift_kinds %#x has bits beyond the %d names Hello gave", i, mask, driftKinds)
			}
		}
	}
	counts := r.GetRuleCounts()
	starts := make([]uint32, rows+1)
	total := uint64(0)
	for i := 0; i < rows; i++ {
		starts[i] = uint32(total)
		total += uint64(binary.LittleEndian.Uint32(counts[4*i:]))
		if total > uint64(len(r.GetRuleIds())/4) {
			return nil, fmt.Errorf("rule_counts add up to more than the %d rule_ids", len(r.GetRuleIds())/4)
		}
	}
	starts[rows] = uint32(total)
	if uint64(len(r.GetRuleIds())) != 4*total {
		return nil, fmt.Errorf("rule_ids has %d bytes, rule_counts add up to %d ids", len(r.GetRuleIds()), total)
	}
	if err := checkCodes("rule_ids", r.GetRuleIds(), n); err != nil {
		return nil, err
	}
	return &response{CorrelateResponse: r, ruleStart: starts}, nil
}

func checkCodes(name string, col []byte, limit uint32) error {
	for i := 0; i+4 <= len(col); i += 4 {
		if c := binary.LittleEndian.Uint32(col[i:]); c >= limit {
			return fmt.Errorf("%s[%d]: code %d is outside the %d strings", name, i/4, c, limit)
		}
	}
	return nil
}

// annotator writes checked responses onto items. pdata allocates every value it stores, so
// what it costs per item is mostly those allocations; the annotator adds as little as it can
// on top: rows repeat a few annotations (they follow the items' shapes), so the rounded
// scores and the drift_kinds and rule_ids arrays are built once per distinct value and each
// item gets a copy of the prepared array (Value.CopyTo allocates exactly what building it
// element by element would, without the per-element calls).
type annotator struct {
	driftKinds []string
	kindLists  map[uint32]pcommon.Value // by drift_kinds mask
	rounded    map[uint32]float64
	// ruleLists are the rule_ids arrays by the bytes of their codes; codes index one
	// response's strings, so apply clears them for each response.
	ruleLists map[string]pcommon.Value
	evidence  [16 * evidenceBlock]byte
}

// evidenceBlock is how many items' evidence_id texts share one string allocation. The
// texts are slices of it, so an item kept alone keeps the block alive: a small block bounds
// that, and still saves all but one allocation in evidenceBlock.
const evidenceBlock = 32

func newAnnotator(driftKinds []string) *annotator {
	return &annotator{
		driftKinds: driftKinds,
		kindLists:  map[uint32]pcommon.Value{},
		rounded:    map[uint32]float64{},
		ruleLists:  map[string]pcommon.Value{},
	}
}

// apply writes response row i onto the attributes of batch row rows[i] (row i itself when
// rows is nil). Existing behavior.* attributes are replaced, as the sidecar's replay does.
func (a *annotator) apply(r *response, b batch, rows []int32) {
	n := int(r.GetRows())
	strs := r.GetStrings()
	le := binary.LittleEndian
	nodes, contexts := r.GetSpecNodeId(), r.GetContext()
	matchTypes, statuses := r.GetMatchType(), r.GetCorrelationStatus()
	confidences, scores := r.GetConfidence(), r.GetDriftScore()
	levels, classes := r.GetDriftLevel(), r.GetDriftClass()
	masks, ruleIDs, evidenceIDs := r.GetDriftKinds(), r.GetRuleIds(), r.GetEvidenceId()
	specVersion := r.GetSpecVersion()
	clear(a.ruleLists)

	// Consecutive rows mostly carry the same values: the last ones are kept at hand, in
	// front of the maps.
	var conf, score lastRounded
	lastMask, lastKinds := uint32(0), a.kinds(0)
	var lastRuleCodes []byte
	lastRules := a.rules(strs, nil)
	var evidence string
	for i := 0; i < n; i++ {
		row := i
		if rows != nil {
			row = int(rows[i])
		}
		if i%evidenceBlock == 0 {
			evidence = a.evidenceTexts(evidenceIDs[8*i : 8*min(n, i+evidenceBlock)])
		}
		if mask := le.Uint32(masks[4*i:]); mask != lastMask {
			lastMask, lastKinds = mask, a.kinds(mask)
		}
		if codes := ruleIDs[4*r.ruleStart[i] : 4*r.ruleStart[i+1]]; !bytes.Equal(codes, lastRuleCodes) {
			lastRuleCodes, lastRules = codes, a.rules(strs, codes)
		}

		attrs := b.itemAttributes(row)
		removeBehaviorAttributes(attrs)
		attrs.EnsureCapacity(attrs.Len() + contractAttributes)
		attrs.PutStr(attrSpecNodeID, strs[le.Uint32(nodes[4*i:])])
		attrs.PutStr(attrContext, strs[le.Uint32(contexts[4*i:])])
		attrs.PutStr(attrMatchType, matchTypeNames[matchTypes[i]])
		attrs.PutDouble(attrConfidence, conf.round4(a, le.Uint32(confidences[4*i:])))
		attrs.PutStr(attrCorrelationState, statusNames[statuses[i]])
		attrs.PutDouble(attrDriftScore, score.round4(a, le.Uint32(scores[4*i:])))
		attrs.PutStr(attrDriftLevel, driftLevelNames[levels[i]])
		attrs.PutStr(attrDriftClass, driftClassNames[classes[i]])
		lastKinds.CopyTo(attrs.PutEmpty(attrDriftKinds))
		lastRules.CopyTo(attrs.PutEmpty(attrRuleIDs))
		k := i % evidenceBlock
		attrs.PutStr(attrEvidenceID, evidence[16*k:16*k+16])
		attrs.PutStr(attrSpecVersion, specVersion)
	}
}

// evidenceTexts is the 16 lower-case hex digits of each evidence_id in col (8 bytes each,
// little-endian), concatenated in one string.
func (a *annotator) evidenceTexts(col []byte) string {
	var id [8]byte
	for i := 0; i+8 <= len(col); i += 8 {
		binary.BigEndian.PutUint64(id[:], binary.LittleEndian.Uint64(col[i:]))
		hex.Encode(a.evidence[2*i:], id[:])
	}
	return string(a.evidence[:2*len(col)])
}

// removeBehaviorAttributes drops the behavior.* attributes an item already has (from an
// earlier annotation), scanning once and removing only when there are some.
func removeBehaviorAttributes(attrs pcommon.Map) {
	for k := range attrs.All() {
		if strings.HasPrefix(k, behaviorPrefix) {
			attrs.RemoveIf(func(k string, _ pcommon.Value) bool { return strings.HasPrefix(k, behaviorPrefix) })
			return
		}
	}
}

// kinds is the drift_kinds array of a mask: the names of its bits, lowest bit first.
func (a *annotator) kinds(mask uint32) pcommon.Value {
	if v, ok := a.kindLists[mask]; ok {
		return v
	}
	var names []string
	for bit := 0; bit < len(a.driftKinds) && bit < 32; bit++ {
		if mask&(1<<bit) != 0 {
			names = append(names, a.driftKinds[bit])
		}
	}
	v := stringArray(names)
	a.kindLists[mask] = v
	return v
}

// rules is the rule_ids array of a row whose rule codes (4 bytes each) are `codes`.
func (a *annotator) rules(strs []string, codes []byte) pcommon.Value {
	if v, ok := a.ruleLists[string(codes)]; ok {
		return v
	}
	names := make([]string, 0, len(codes)/4)
	for k := 0; k+4 <= len(codes); k += 4 {
		names = append(names, strs[binary.LittleEndian.Uint32(codes[k:])])
	}
	v := stringArray(names)
	a.ruleLists[string(codes)] = v
	return v
}

// stringArray is an array value of strings, a template for Value.CopyTo.
func stringArray(values []string) pcommon.Value {
	v := pcommon.NewValueEmpty()
	s := v.SetEmptySlice()
	s.EnsureCapacity(len(values))
	for _, e := range values {
		s.AppendEmpty().SetStr(e)
	}
	return v
}

// lastRounded is the last value round4 gave for one column.
type lastRounded struct {
	ok    bool
	bits  uint32
	value float64
}

func (l *lastRounded) round4(a *annotator, bits uint32) float64 {
	if !l.ok || l.bits != bits {
		l.ok, l.bits, l.value = true, bits, a.round4(bits)
	}
	return l.value
}

// round4 is a float32 column value rounded to 4 decimals the way Python's round(x, 4) does
// (correctly rounded from the exact binary value), as the sidecar's replay writes it.
func (a *annotator) round4(bits uint32) float64 {
	if v, ok := a.rounded[bits]; ok {
		return v
	}
	var buf [32]byte
	text := strconv.AppendFloat(buf[:0], float64(math.Float32frombits(bits)), 'f', 4, 64)
	v, _ := strconv.ParseFloat(string(text), 64)
	a.rounded[bits] = v
	return v
}
