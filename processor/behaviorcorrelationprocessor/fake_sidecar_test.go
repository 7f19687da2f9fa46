package behaviorcorrelationprocessor

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// fakeDriftKinds are the bit names the fake sidecar announces.
var fakeDriftKinds = []string{"undeclared_operation", "latency_budget", "pii_exposure"}

// fakeSidecar is a real gRPC server on loopback that checks every request against the
// protocol and answers with annotations derived from it, so tests can see whether each
// annotation landed on the item it belongs to:
//
//   - spec_node_id: the row's name (spans, metric points), or its body (logs);
//   - context: the service.name attribute of the row's resource;
//   - evidence_id: the row's span id (exemplar span id for points) read as a big-endian
//     integer, so its hex is the span id's hex;
//   - drift_kinds: bit (row % 3); drift_level: row % 4; drift_class: row % 3;
//   - rule_ids: "rule.fake" and, for metric points, "value=<%g of the value column>".
type fakeSidecar struct {
	behaviorpb.UnimplementedBehaviorCorrelationServer
	t      testing.TB
	addr   string
	server *grpc.Server

	mu               sync.Mutex
	helloVersion     uint32
	helloErr         error
	helloProjection  *behaviorpb.Projection
	maxRequestBytes  uint64
	delay            time.Duration
	correlateErr     error
	mutate           func(*behaviorpb.CorrelateResponse) // breaks responses on purpose
	answerProjection *behaviorpb.Projection
	fixed            *behaviorpb.CorrelateResponse // answer this without decoding (benchmarks)
	keep             bool                          // record requests (off in benchmarks)
	requests         []*behaviorpb.CorrelateRequest
	hellos           int
	inflight         int
	maxInflight      int
}

func newFakeSidecar(t testing.TB) *fakeSidecar {
	f := &fakeSidecar{t: t, keep: true, helloVersion: protocolVersion, helloProjection: &behaviorpb.Projection{Version: 1, AllAttributes: true}}
	f.serve(t, "127.0.0.1:0")
	return f
}

// serve listens on addr (a fixed port to bring a sidecar "back up").
func (f *fakeSidecar) serve(t testing.TB, addr string) {
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	f.addr = lis.Addr().String()
	f.server = grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	behaviorpb.RegisterBehaviorCorrelationServer(f.server, f)
	go func() { _ = f.server.Serve(lis) }()
	t.Cleanup(f.stop)
}

func (f *fakeSidecar) stop() { f.server.Stop() }

func (f *fakeSidecar) set(change func(f *fakeSidecar)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func (f *fakeSidecar) received() []*behaviorpb.CorrelateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*behaviorpb.CorrelateRequest(nil), f.requests...)
}

func (f *fakeSidecar) Hello(_ context.Context, req *behaviorpb.HelloRequest) (*behaviorpb.HelloResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hellos++
	if req.GetProtocolVersion() != protocolVersion {
		f.t.Errorf("Hello with protocol_version %d", req.GetProtocolVersion())
	}
	if f.helloErr != nil {
		return nil, f.helloErr
	}
	return &behaviorpb.HelloResponse{
		ProtocolVersion: f.helloVersion,
		SpecVersion:     "spec-hash-1",
		Projection:      f.helloProjection,
		DriftKindNames:  fakeDriftKinds,
		MaxRequestBytes: f.maxRequestBytes,
	}, nil
}

func (f *fakeSidecar) Correlate(ctx context.Context, req *behaviorpb.CorrelateRequest) (*behaviorpb.CorrelateResponse, error) {
	f.mu.Lock()
	if f.fixed != nil {
		resp := f.fixed
		f.mu.Unlock()
		return resp, nil
	}
	if f.keep {
		f.requests = append(f.requests, req)
	}
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	delay, err, mutate, projection := f.delay, f.correlateErr, f.mutate, f.answerProjection
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	rows, problem := readRequest(req)
	if problem != "" {
		f.t.Errorf("malformed request: %s", problem)
		return nil, status.Error(codes.InvalidArgument, problem)
	}
	resp := annotate(req, rows)
	resp.Projection = projection
	if mutate != nil {
		mutate(resp)
	}
	return resp, nil
}

// colCheck is a per-row column and its width.
type colCheck struct {
	col []byte
	w   int
}

// requestRow is one decoded request row.
type requestRow struct {
	name, body, service string
	spanID              [8]byte
	traceID             [16]byte
	value               float64
	attributes          map[string]string
	attributeTypes      map[string]behaviorpb.ValueType
}

// readRequest decodes a request and checks it against the protocol; problem is "" when it is
// well-formed.
func readRequest(req *behaviorpb.CorrelateRequest) (rows []requestRow, problem string) {
	n := int(req.GetRows())
	strs := req.GetStrings()
	if req.GetProtocolVersion() != protocolVersion {
		return nil, fmt.Sprintf("protocol_version %d", req.GetProtocolVersion())
	}
	if len(strs) == 0 || strs[0] != "" {
		return nil, "strings[0] is not empty"
	}
	str := func(col []byte, i int) (string, bool) {
		c := binary.LittleEndian.Uint32(col[4*i:])
		if int(c) >= len(strs) {
			return "", false
		}
		return strs[c], true
	}
	width := func(col []byte, w int, name string) string {
		if len(col) != w*n {
			return fmt.Sprintf("%s has %d bytes for %d rows of %d", name, len(col), n, w)
		}
		return ""
	}
	checks := map[string]colCheck{"start_time_unix_nano": {req.GetStartTimeUnixNano(), 8}}
	switch req.GetSignal() {
	case behaviorpb.Signal_SIGNAL_SPANS:
		checks["trace_id"] = colCheck{req.GetTraceId(), 16}
		checks["span_id"] = colCheck{req.GetSpanId(), 8}
		checks["parent_span_id"] = colCheck{req.GetParentSpanId(), 8}
		checks["end"] = colCheck{req.GetEndTimeUnixNano(), 8}
		checks["kind"] = colCheck{req.GetKind(), 1}
		checks["status"] = colCheck{req.GetStatusCode(), 1}
		checks["name"] = colCheck{req.GetName(), 4}
	case behaviorpb.Signal_SIGNAL_LOGS:
		checks["trace_id"] = colCheck{req.GetTraceId(), 16}
		checks["span_id"] = colCheck{req.GetSpanId(), 8}
		checks["severity"] = colCheck{req.GetSeverityNumber(), 1}
		checks["event_name"] = colCheck{req.GetEventName(), 4}
		checks["body"] = colCheck{req.GetBody(), 4}
	case behaviorpb.Signal_SIGNAL_METRICS:
		checks["name"] = colCheck{req.GetName(), 4}
		checks["value"] = colCheck{req.GetValue(), 8}
		checks["exemplar_trace_id"] = colCheck{req.GetExemplarTraceId(), 16}
		checks["exemplar_span_id"] = colCheck{req.GetExemplarSpanId(), 8}
	default:
		return nil, "no signal"
	}
	for name, c := range checks {
		if p := width(c.col, c.w, name); p != "" {
			return nil, p
		}
	}

	// Resources: runs starting at 0, increasing, each with its attributes.
	firsts := req.GetResourceFirstRow()
	if n > 0 && (len(firsts) == 0 || binary.LittleEndian.Uint32(firsts) != 0) {
		return nil, "resource_first_row does not start at 0"
	}
	resources, p := readAttributes(req.GetResourceAttributes(), len(firsts)/4, strs)
	if p != "" {
		return nil, "resource_attributes: " + p
	}
	items, p := readAttributes(req.GetAttributes(), n, strs)
	if p != "" {
		return nil, "attributes: " + p
	}
	rows = make([]requestRow, n)
	res := -1
	for i := range rows {
		for res+1 < len(firsts)/4 && int(binary.LittleEndian.Uint32(firsts[4*(res+1):])) <= i {
			if res >= 0 && int(binary.LittleEndian.Uint32(firsts[4*(res+1):])) <= int(binary.LittleEndian.Uint32(firsts[4*res:])) {
				return nil, "resource_first_row is not increasing"
			}
			res++
		}
		r := &rows[i]
		r.service = resources[res].values["service.name"]
		r.attributes, r.attributeTypes = items[i].values, items[i].types
		var ok bool
		switch req.GetSignal() {
		case behaviorpb.Signal_SIGNAL_SPANS:
			copy(r.traceID[:], req.GetTraceId()[16*i:])
			copy(r.spanID[:], req.GetSpanId()[8*i:])
			r.name, ok = str(req.GetName(), i)
		case behaviorpb.Signal_SIGNAL_LOGS:
			copy(r.traceID[:], req.GetTraceId()[16*i:])
			copy(r.spanID[:], req.GetSpanId()[8*i:])
			if r.body, ok = str(req.GetBody(), i); ok {
				r.name, ok = str(req.GetEventName(), i)
			}
		case behaviorpb.Signal_SIGNAL_METRICS:
			copy(r.traceID[:], req.GetExemplarTraceId()[16*i:])
			copy(r.spanID[:], req.GetExemplarSpanId()[8*i:])
			r.value = math.Float64frombits(binary.LittleEndian.Uint64(req.GetValue()[8*i:]))
			r.name, ok = str(req.GetName(), i)
		}
		if !ok {
			return nil, fmt.Sprintf("row %d: a code outside the string table", i)
		}
	}
	return rows, ""
}

type ownerAttributes struct {
	values map[string]string
	types  map[string]behaviorpb.ValueType
}

func readAttributes(a *behaviorpb.Attributes, owners int, strs []string) ([]ownerAttributes, string) {
	if len(a.GetCounts()) != 4*owners {
		return nil, fmt.Sprintf("counts has %d bytes for %d owners", len(a.GetCounts()), owners)
	}
	entries := len(a.GetValueTypes())
	if len(a.GetKeys()) != 4*entries || len(a.GetValues()) != 4*entries {
		return nil, "keys, values and value_types differ in length"
	}
	out := make([]ownerAttributes, owners)
	at := 0
	for o := range out {
		count := int(binary.LittleEndian.Uint32(a.GetCounts()[4*o:]))
		out[o] = ownerAttributes{values: map[string]string{}, types: map[string]behaviorpb.ValueType{}}
		for range count {
			if at >= entries {
				return nil, "counts add up to more than the entries"
			}
			k := binary.LittleEndian.Uint32(a.GetKeys()[4*at:])
			v := binary.LittleEndian.Uint32(a.GetValues()[4*at:])
			if int(k) >= len(strs) || int(v) >= len(strs) {
				return nil, "a code outside the string table"
			}
			t := behaviorpb.ValueType(a.GetValueTypes()[at])
			if t == behaviorpb.ValueType_VALUE_TYPE_EMPTY || t > behaviorpb.ValueType_VALUE_TYPE_KVLIST {
				return nil, fmt.Sprintf("value type %d", t)
			}
			out[o].values[strs[k]] = strs[v]
			out[o].types[strs[k]] = t
			at++
		}
	}
	if at != entries {
		return nil, "entries left over"
	}
	return out, ""
}

// annotate builds the fake's deterministic answer (see fakeSidecar).
func annotate(req *behaviorpb.CorrelateRequest, rows []requestRow) *behaviorpb.CorrelateResponse {
	strs := []string{""}
	codes := map[string]uint32{"": 0}
	code := func(s string) uint32 {
		c, ok := codes[s]
		if !ok {
			c = uint32(len(strs))
			codes[s] = c
			strs = append(strs, s)
		}
		return c
	}
	r := &behaviorpb.CorrelateResponse{ProtocolVersion: protocolVersion, SpecVersion: "spec-hash-1", Rows: uint32(len(rows))}
	le := binary.LittleEndian
	for i, row := range rows {
		node := row.name
		if req.GetSignal() == behaviorpb.Signal_SIGNAL_LOGS {
			node = row.body
		}
		r.SpecNodeId = le.AppendUint32(r.SpecNodeId, code(node))
		r.Context = le.AppendUint32(r.Context, code(row.service))
		r.MatchType = append(r.MatchType, 1)
		r.Confidence = le.AppendUint32(r.Confidence, math.Float32bits(0.75))
		r.CorrelationStatus = append(r.CorrelationStatus, 0)
		r.DriftScore = le.AppendUint32(r.DriftScore, math.Float32bits(0.123456))
		r.DriftLevel = append(r.DriftLevel, byte(i%4))
		r.DriftClass = append(r.DriftClass, byte(i%3))
		r.DriftKinds = le.AppendUint32(r.DriftKinds, 1<<(i%3))
		rules := []string{"rule.fake"}
		if req.GetSignal() == behaviorpb.Signal_SIGNAL_METRICS {
			rules = append(rules, fmt.Sprintf("value=%g", row.value))
		}
		r.RuleCounts = le.AppendUint32(r.RuleCounts, uint32(len(rules)))
		for _, rule := range rules {
			r.RuleIds = le.AppendUint32(r.RuleIds, code(rule))
		}
		r.EvidenceId = le.AppendUint64(r.EvidenceId, binary.BigEndian.Uint64(row.spanID[:]))
	}
	r.Strings = strs
	return r
}

// sizes are the serialized sizes of requests.
func sizes(reqs []*behaviorpb.CorrelateRequest) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = proto.Size(r)
	}
	return out
}
