package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// shapesFile is the --shapes format: trace templates, each a list of spans whose parent is
// the index of an earlier span in the same template (-1 for a root).
//
//	{"traces": [{"spans": [{"service": "frontend", "name": "GET /cart", "kind": "server",
//	  "parent": -1, "duration_us": 1200, "attributes": {"http.route": "/cart"}}]}]}
type shapesFile struct {
	Traces []traceTemplate `json:"traces"`
}

type traceTemplate struct {
	Spans []spanTemplate `json:"spans"`
}

type spanTemplate struct {
	Service    string         `json:"service"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Parent     int            `json:"parent"`
	DurationUS int64          `json:"duration_us"`
	Error      bool           `json:"error"`
	Attributes map[string]any `json:"attributes"`
}

var spanKinds = map[string]ptrace.SpanKind{
	"":         ptrace.SpanKindInternal,
	"internal": ptrace.SpanKindInternal,
	"server":   ptrace.SpanKindServer,
	"client":   ptrace.SpanKindClient,
	"producer": ptrace.SpanKindProducer,
	"consumer": ptrace.SpanKindConsumer,
}

func loadTemplates(path string) ([]traceTemplate, error) {
	if path == "" {
		return []traceTemplate{builtinCheckout()}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f shapesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for ti, t := range f.Traces {
		if len(t.Spans) == 0 {
			return nil, fmt.Errorf("%s: trace %d has no spans", path, ti)
		}
		for si, s := range t.Spans {
			if s.Parent >= si || s.Parent < -1 {
				return nil, fmt.Errorf("%s: trace %d span %d: parent %d must be -1 or an earlier span", path, ti, si, s.Parent)
			}
			if _, ok := spanKinds[s.Kind]; !ok {
				return nil, fmt.Errorf("%s: trace %d span %d: unknown kind %q", path, ti, si, s.Kind)
			}
		}
	}
	if len(f.Traces) == 0 {
		return nil, fmt.Errorf("%s: no traces", path)
	}
	return f.Traces, nil
}

func builtinCheckout() traceTemplate {
	t := traceTemplate{Spans: []spanTemplate{{
		Service: "checkoutservice", Name: "hipstershop.CheckoutService/PlaceOrder", Kind: "server", Parent: -1, DurationUS: 9000,
		Attributes: map[string]any{"rpc.system": "grpc", "rpc.service": "hipstershop.CheckoutService", "rpc.method": "PlaceOrder"},
	}}}
	for _, call := range [][2]string{{"cartservice", "CartService/GetCart"}, {"paymentservice", "PaymentService/Charge"}, {"emailservice", "EmailService/SendOrderConfirmation"}} {
		name := "hipstershop." + call[1]
		t.Spans = append(t.Spans,
			spanTemplate{Service: "checkoutservice", Name: name, Kind: "client", Parent: 0, DurationUS: 1500},
			spanTemplate{Service: call[0], Name: name, Kind: "server", Parent: len(t.Spans), DurationUS: 1000})
	}
	return t
}

// buildBatch tiles whole templates (the last one cut short) into exactly n spans, one
// ResourceSpans per service. Trace ids get their trace number in bytes 8-15; stampBatch
// fills in the rest before each send.
func buildBatch(templates []traceTemplate, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	byService := map[string]ptrace.SpanSlice{}
	spansOf := func(service string) ptrace.SpanSlice {
		if ss, ok := byService[service]; ok {
			return ss
		}
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		rs.Resource().Attributes().PutStr("service.namespace", "online-boutique")
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("loadgen")
		byService[service] = sc.Spans()
		return sc.Spans()
	}
	var spanCounter uint64
	ids := make([]pcommon.SpanID, 0, 64)
	for made, traceNo := 0, uint64(0); made < n; traceNo++ {
		t := templates[int(traceNo)%len(templates)]
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:16], traceNo+1)
		ids = ids[:0]
		offset := int64(0)
		for _, st := range t.Spans {
			if made == n {
				break
			}
			spanCounter++
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], spanCounter)
			ids = append(ids, sid)
			sp := spansOf(st.Service).AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			if st.Parent >= 0 {
				sp.SetParentSpanID(ids[st.Parent])
			}
			sp.SetName(st.Name)
			sp.SetKind(spanKinds[st.Kind])
			dur := max(st.DurationUS, 1)
			offset += 50
			sp.SetStartTimestamp(pcommon.Timestamp(offset * 1000))
			sp.SetEndTimestamp(pcommon.Timestamp((offset + dur) * 1000))
			if st.Error {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			putAttributes(sp.Attributes(), st.Attributes)
			made++
		}
	}
	return td
}

func putAttributes(m pcommon.Map, attrs map[string]any) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := attrs[k].(type) {
		case string:
			m.PutStr(k, v)
		case bool:
			m.PutBool(k, v)
		case float64: // encoding/json numbers
			if v == float64(int64(v)) {
				m.PutInt(k, int64(v))
			} else {
				m.PutDouble(k, v)
			}
		default:
			m.PutStr(k, fmt.Sprint(v))
		}
	}
}

// preAnnotate gives every span the 12 contract attributes with the values a typical span of
// the Online Boutique demo gets from the processor (bound operation, no drift, one rule), and
// an evidence id of its own.
func preAnnotate(td ptrace.Traces) {
	const specVersion = "226160b9b3acaef46e89f263b2ed1a95da90c82bfc19709ab12de488c47e43cf"
	eachSpan(td, func(sp ptrace.Span) {
		a := sp.Attributes()
		a.PutStr("behavior.spec_node_id", "checkout:flow:"+sp.Name())
		a.PutStr("behavior.context", "checkout")
		a.PutStr("behavior.match_type", "deterministic")
		a.PutDouble("behavior.confidence", 1)
		a.PutStr("behavior.correlation_status", "ok")
		a.PutDouble("behavior.drift_score", 0)
		a.PutStr("behavior.drift_level", "none")
		a.PutStr("behavior.drift_class", "none")
		a.PutEmptySlice("behavior.drift_kinds")
		a.PutEmptySlice("behavior.rule_ids").AppendEmpty().SetStr("bind.span_name")
		sid := sp.SpanID()
		a.PutStr("behavior.evidence_id", hex.EncodeToString(sid[:]))
		a.PutStr("behavior.spec_version", specVersion)
	})
}

// eachSpan calls f with every span of td, in document order.
func eachSpan(td ptrace.Traces, f func(ptrace.Span)) {
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				f(spans.At(k))
			}
		}
	}
}
