package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
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

// annotator writes checked responses onto items; it caches what repeats across rows.
type annotator struct {
	driftKinds []string
	kindLists  map[uint32][]string
	rounded    map[uint32]float64
	rules      []string
}

func newAnnotator(driftKinds []string) *annotator {
	return &annotator{driftKinds: driftKinds, kindLists: map[uint32][]string{}, rounded: map[uint32]float64{}}
}

// apply writes response row i onto the attributes of batch row rows[i] (row i itself when
// rows is nil). Existing behavior.* attributes are replaced, as the sidecar's replay does.
func (a *annotator) apply(r *response, b batch, rows []int32) {
	strs := r.GetStrings()
	u32 := func(col []byte, i int) uint32 { return binary.LittleEndian.Uint32(col[4*i:]) }
	var evidence [16]byte
	for i := 0; i < int(r.GetRows()); i++ {
		row := i
		if rows != nil {
			row = int(rows[i])
		}
		attrs := b.itemAttributes(row)
		removeBehaviorAttributes(attrs)
		attrs.EnsureCapacity(attrs.Len() + contractAttributes)
		attrs.PutStr(attrSpecNodeID, strs[u32(r.GetSpecNodeId(), i)])
		attrs.PutStr(attrContext, strs[u32(r.GetContext(), i)])
		attrs.PutStr(attrMatchType, matchTypeNames[r.GetMatchType()[i]])
		attrs.PutDouble(attrConfidence, a.round4(u32(r.GetConfidence(), i)))
		attrs.PutStr(attrCorrelationState, statusNames[r.GetCorrelationStatus()[i]])
		attrs.PutDouble(attrDriftScore, a.round4(u32(r.GetDriftScore(), i)))
		attrs.PutStr(attrDriftLevel, driftLevelNames[r.GetDriftLevel()[i]])
		attrs.PutStr(attrDriftClass, driftClassNames[r.GetDriftClass()[i]])
		putStrings(attrs, attrDriftKinds, a.kinds(u32(r.GetDriftKinds(), i)))
		a.rules = a.rules[:0]
		for k := r.ruleStart[i]; k < r.ruleStart[i+1]; k++ {
			a.rules = append(a.rules, strs[u32(r.GetRuleIds(), int(k))])
		}
		putStrings(attrs, attrRuleIDs, a.rules)
		binary.BigEndian.PutUint64(evidence[8:], binary.LittleEndian.Uint64(r.GetEvidenceId()[8*i:]))
		hex.Encode(evidence[:], evidence[8:])
		attrs.PutStr(attrEvidenceID, string(evidence[:]))
		attrs.PutStr(attrSpecVersion, r.GetSpecVersion())
	}
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

// kinds are the names of the bits of a drift_kinds mask, lowest bit first.
func (a *annotator) kinds(mask uint32) []string {
	if names, ok := a.kindLists[mask]; ok {
		return names
	}
	var names []string
	for bit := 0; bit < len(a.driftKinds) && bit < 32; bit++ {
		if mask&(1<<bit) != 0 {
			names = append(names, a.driftKinds[bit])
		}
	}
	a.kindLists[mask] = names
	return names
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

func putStrings(attrs pcommon.Map, key string, values []string) {
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(values))
	for _, v := range values {
		s.AppendEmpty().SetStr(v)
	}
}
