package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// projection is what the sidecar asked to be sent: every attribute, or the listed keys.
type projection struct {
	version uint64
	all     bool
	keys    map[string]struct{}
}

// newProjection reads a Projection message; none means every attribute.
func newProjection(p *behaviorpb.Projection) *projection {
	if p == nil {
		return &projection{all: true}
	}
	keys := make(map[string]struct{}, len(p.GetAttributeKeys()))
	for _, k := range p.GetAttributeKeys() {
		keys[k] = struct{}{}
	}
	return &projection{version: p.GetVersion(), all: p.GetAllAttributes(), keys: keys}
}

func (p *projection) wants(key string) bool {
	if p.all {
		return true
	}
	_, ok := p.keys[key]
	return ok
}

// The packed columns of a request, indexes into encoder.cols.
const (
	colTraceID = iota
	colSpanID
	colParentSpanID
	colStart
	colEnd
	colKind
	colStatus
	colSeverity
	colName
	colEventName
	colBody
	colValue
	colExemplarTraceID
	colExemplarSpanID
	colAttrCounts
	colAttrKeys
	colAttrValues
	colAttrTypes
	colResourceFirstRow
	colResourceCounts
	colResourceKeys
	colResourceValues
	colResourceTypes
	numCols
)

// attributeCols are the four columns of one Attributes message.
type attributeCols struct{ counts, keys, values, types int }

var (
	resourceAttributeCols = attributeCols{colResourceCounts, colResourceKeys, colResourceValues, colResourceTypes}
)

// messageOverhead bounds what a request holds besides its columns and strings: the scalar
// fields and, per bytes field and nested message, a tag and a length.
const messageOverhead = 64 + (numCols+2)*8

// source is a batch of one signal seen as rows in document order; the encoder asks it for a
// row's resource and has it write the row's own columns.
type source interface {
	rowCount() int
	// resourceOf is the index of the row's resource (rows of one resource are contiguous).
	resourceOf(row int) int32
	resourceAttributes(resource int32) pcommon.Map
	encodeRow(e *encoder, row int)
}

// encoder builds one CorrelateRequest (one chunk) from rows of a source, keeping the exact
// sizes of its columns and string table so that a chunk can be closed before it passes the
// limit. A row that does not fit is taken back with rollback.
type encoder struct {
	signal     behaviorpb.Signal
	projection *projection

	cols    [numCols][]byte
	strings []string
	codes   map[string]uint32
	// keys are the codes' map keys by code: strings as found in the batch, before validText.
	keys []string
	// Front caches: attribute keys are few and repeat on every row, so they get a small map
	// of their own (a key that is also a value may be in the table twice, which is allowed);
	// numbers are looked up by value, without formatting and hashing their text.
	keyCodes    map[string]uint32
	intCodes    map[int64]uint32
	doubleCodes map[uint64]uint32
	// slots remember, per position in an item's attribute list, the last key and value
	// found there (see attrSlot).
	slots       []attrSlot
	stringBytes int
	// rows maps request row i to the batch row it was made from.
	rows         []int32
	lastResource int32

	scratch []byte
}

// attrSlot remembers, for one position in an item's attribute list, the last key seen there
// (with its code and whether the projection wants it) and the code of the last value seen
// there. Items of one kind carry the same keys in the same order and mostly the same values,
// so an attribute is usually coded by comparing two strings instead of by two lookups in
// hash tables that hold every distinct string of the batch (and, with per-item ids, grow
// too large to stay in cache). A slot only short-cuts the tables: it yields the same codes
// they would, so the request is the same with or without it.
type attrSlot struct {
	keyOK   bool
	wanted  bool
	key     string
	keyCode uint32 // valid when keyOK && wanted

	// The last value, by type: its string, or the bits of an int, double or bool.
	valueType pcommon.ValueType // ValueTypeEmpty: none cached
	valueStr  string
	valueBits uint64
	valueCode uint32
}

// maxSlots bounds the slots; attributes past it are coded through the tables.
const maxSlots = 64

// mark is an encoder state to return to.
type mark struct {
	lens         [numCols]int
	strings      int
	stringBytes  int
	rows         int
	lastResource int32
}

// encoders recycles encoders (their columns, string table and map) between batches, so a
// steady stream of batches allocates almost nothing for projection.
var encoders sync.Pool

func newEncoder(signal behaviorpb.Signal, p *projection, rowsHint int) *encoder {
	e, _ := encoders.Get().(*encoder)
	if e == nil {
		e = &encoder{
			strings: make([]string, 1, 64),
			keys:    make([]string, 1, 64),
			codes:   make(map[string]uint32, min(2*rowsHint, 1<<16)),

			keyCodes:    make(map[string]uint32, 64),
			intCodes:    make(map[int64]uint32, 64),
			doubleCodes: make(map[uint64]uint32, 64),
		}
		e.codes[""] = 0
	}
	e.signal, e.projection = signal, p
	e.lastResource = -1
	e.stringBytes = 2 // strings[0] = "": a tag and a zero length
	return e
}

// release returns the encoder to the pool; its request and rows must not be used afterwards.
func (e *encoder) release() {
	for i := range e.cols {
		e.cols[i] = e.cols[i][:0]
	}
	clear(e.strings[1:])
	clear(e.keys[1:])
	e.strings, e.keys = e.strings[:1], e.keys[:1]
	clear(e.codes)
	e.codes[""] = 0
	clear(e.keyCodes)
	clear(e.intCodes)
	clear(e.doubleCodes)
	clear(e.slots) // the next batch may have another projection
	e.rows = e.rows[:0]
	e.projection = nil
	encoders.Put(e)
}

// size bounds the serialized size of the request built so far.
func (e *encoder) size() int {
	n := messageOverhead + e.stringBytes
	for i := range e.cols {
		n += len(e.cols[i])
	}
	return n
}

func (e *encoder) mark() mark {
	m := mark{strings: len(e.strings), stringBytes: e.stringBytes, rows: len(e.rows), lastResource: e.lastResource}
	for i := range e.cols {
		m.lens[i] = len(e.cols[i])
	}
	return m
}

func (e *encoder) rollback(m mark) {
	for i := range e.cols {
		e.cols[i] = e.cols[i][:m.lens[i]]
	}
	for _, k := range e.keys[m.strings:] {
		delete(e.codes, k)
	}
	// The front caches only map into the table; drop what points past the mark.
	dropFrom(e.keyCodes, m.strings)
	dropFrom(e.intCodes, m.strings)
	dropFrom(e.doubleCodes, m.strings)
	for i := range e.slots {
		s := &e.slots[i]
		if s.keyOK && s.wanted && int(s.keyCode) >= m.strings {
			s.keyOK = false
		}
		if s.valueType != pcommon.ValueTypeEmpty && int(s.valueCode) >= m.strings {
			s.valueType = pcommon.ValueTypeEmpty
		}
	}
	e.keys = e.keys[:m.strings]
	e.strings = e.strings[:m.strings]
	e.stringBytes = m.stringBytes
	e.rows = e.rows[:m.rows]
	e.lastResource = m.lastResource
}

// addRow appends batch row `row` of src as the next request row.
func (e *encoder) addRow(src source, row int) {
	if r := src.resourceOf(row); r != e.lastResource {
		e.putU32(colResourceFirstRow, uint32(len(e.rows)))
		e.attributes(resourceAttributeCols, src.resourceAttributes(r))
		e.lastResource = r
	}
	e.rows = append(e.rows, int32(row))
	src.encodeRow(e, row)
}

// code is the string table code of s, adding s when it is new.
func (e *encoder) code(s string) uint32 {
	if c, ok := e.codes[s]; ok {
		return c
	}
	return e.insert(s)
}

// codeBytes is code(string(b)) without allocating when b is already in the table.
func (e *encoder) codeBytes(b []byte) uint32 {
	if c, ok := e.codes[string(b)]; ok {
		return c
	}
	return e.insert(string(b))
}

func (e *encoder) insert(s string) uint32 {
	c := uint32(len(e.strings))
	e.codes[s] = c
	e.keys = append(e.keys, s)
	text := validText(s)
	e.strings = append(e.strings, text)
	e.stringBytes += 1 + varintLen(len(text)) + len(text)
	return c
}

// keyCode is the code of an attribute key.
func (e *encoder) keyCode(k string) uint32 {
	if c, ok := e.keyCodes[k]; ok {
		return c
	}
	c := e.insert(k)
	e.keyCodes[k] = c
	return c
}

// valueCode is the code of the text of an attribute value.
func (e *encoder) valueCode(v pcommon.Value) uint32 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return e.code(v.Str())
	case pcommon.ValueTypeInt:
		if c, ok := e.intCodes[v.Int()]; ok {
			return c
		}
		e.scratch = appendPlainText(e.scratch[:0], v)
		c := e.codeBytes(e.scratch)
		e.intCodes[v.Int()] = c
		return c
	case pcommon.ValueTypeDouble:
		bits := math.Float64bits(v.Double())
		if c, ok := e.doubleCodes[bits]; ok {
			return c
		}
		e.scratch = appendPlainText(e.scratch[:0], v)
		c := e.codeBytes(e.scratch)
		e.doubleCodes[bits] = c
		return c
	}
	e.scratch = appendPlainText(e.scratch[:0], v)
	return e.codeBytes(e.scratch)
}

// bodyCode is the code of the text of a log body.
func (e *encoder) bodyCode(v pcommon.Value) uint32 {
	if v.Type() == pcommon.ValueTypeStr {
		return e.code(v.Str())
	}
	e.scratch = appendBodyText(e.scratch[:0], v)
	return e.codeBytes(e.scratch)
}

// attributes appends one owner's attributes: those the projection wants (an empty value as
// VALUE_TYPE_EMPTY with the absent string, as the OTLP decoders keep it). Resource
// attributes (once per run of rows) go through the tables directly.
func (e *encoder) attributes(c attributeCols, m pcommon.Map) {
	count := uint32(0)
	for k, v := range m.All() {
		if !e.projection.wants(k) {
			continue
		}
		e.putU32(c.keys, e.keyCode(k))
		e.putU32(c.values, e.valueCode(v))
		e.cols[c.types] = append(e.cols[c.types], byte(valueType(v)))
		count++
	}
	e.putU32(c.counts, count)
}

// itemAttributes is attributes for the row's own attributes, through the slots.
func (e *encoder) itemAttributes(m pcommon.Map) {
	count := uint32(0)
	i := 0
	for k, v := range m.All() {
		if i >= maxSlots {
			if e.projection.wants(k) {
				e.putItemAttribute(e.keyCode(k), e.valueCode(v), v.Type())
				count++
			}
			continue
		}
		if i == len(e.slots) {
			e.slots = append(e.slots, attrSlot{})
		}
		s := &e.slots[i]
		i++
		if !s.keyOK || s.key != k {
			s.keyOK, s.key, s.wanted = true, k, e.projection.wants(k)
			if s.wanted {
				s.keyCode = e.keyCode(k)
			}
		}
		if !s.wanted {
			continue
		}
		e.putItemAttribute(s.keyCode, e.slotValueCode(s, v), v.Type())
		count++
	}
	e.putU32(colAttrCounts, count)
}

func (e *encoder) putItemAttribute(key, value uint32, t pcommon.ValueType) {
	e.putU32(colAttrKeys, key)
	e.putU32(colAttrValues, value)
	e.cols[colAttrTypes] = append(e.cols[colAttrTypes], byte(valueTypeOf(t)))
}

// slotValueCode is valueCode(v), answered by the slot when it holds the same value.
func (e *encoder) slotValueCode(s *attrSlot, v pcommon.Value) uint32 {
	t := v.Type()
	switch t {
	case pcommon.ValueTypeStr:
		str := v.Str()
		if s.valueType == t && s.valueStr == str {
			return s.valueCode
		}
		c := e.code(str)
		s.valueType, s.valueStr, s.valueCode = t, str, c
		return c
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
		var bits uint64
		switch t {
		case pcommon.ValueTypeInt:
			bits = uint64(v.Int())
		case pcommon.ValueTypeDouble:
			bits = math.Float64bits(v.Double())
		default:
			if v.Bool() {
				bits = 1
			}
		}
		if s.valueType == t && s.valueBits == bits {
			return s.valueCode
		}
		c := e.valueCode(v)
		s.valueType, s.valueBits, s.valueCode = t, bits, c
		return c
	}
	return e.valueCode(v)
}

func (e *encoder) putU8(col int, v uint8) { e.cols[col] = append(e.cols[col], v) }

func (e *encoder) putU32(col int, v uint32) {
	e.cols[col] = binary.LittleEndian.AppendUint32(e.cols[col], v)
}

func (e *encoder) putI64(col int, v int64) {
	e.cols[col] = binary.LittleEndian.AppendUint64(e.cols[col], uint64(v))
}

func (e *encoder) putF64(col int, v float64) {
	e.cols[col] = binary.LittleEndian.AppendUint64(e.cols[col], math.Float64bits(v))
}

func (e *encoder) putBytes(col int, b []byte) { e.cols[col] = append(e.cols[col], b...) }

// request freezes the chunk into a message; the encoder must not be used afterwards.
func (e *encoder) request() *behaviorpb.CorrelateRequest {
	c := &e.cols
	return &behaviorpb.CorrelateRequest{
		ProtocolVersion:   protocolVersion,
		Signal:            e.signal,
		Rows:              uint32(len(e.rows)),
		ProjectionVersion: e.projection.version,
		Strings:           e.strings,
		ResourceFirstRow:  c[colResourceFirstRow],
		ResourceAttributes: &behaviorpb.Attributes{
			Counts: c[colResourceCounts], Keys: c[colResourceKeys],
			Values: c[colResourceValues], ValueTypes: c[colResourceTypes],
		},
		TraceId:           c[colTraceID],
		SpanId:            c[colSpanID],
		ParentSpanId:      c[colParentSpanID],
		StartTimeUnixNano: c[colStart],
		EndTimeUnixNano:   c[colEnd],
		Kind:              c[colKind],
		StatusCode:        c[colStatus],
		SeverityNumber:    c[colSeverity],
		Name:              c[colName],
		EventName:         c[colEventName],
		Body:              c[colBody],
		Value:             c[colValue],
		ExemplarTraceId:   c[colExemplarTraceID],
		ExemplarSpanId:    c[colExemplarSpanID],
		Attributes: &behaviorpb.Attributes{
			Counts: c[colAttrCounts], Keys: c[colAttrKeys],
			Values: c[colAttrValues], ValueTypes: c[colAttrTypes],
		},
	}
}

// rowWidths are the bytes per row of each fixed-width column of each signal.
var rowWidths = map[behaviorpb.Signal][]struct{ col, width int }{
	behaviorpb.Signal_SIGNAL_SPANS: {{colTraceID, 16}, {colSpanID, 8}, {colParentSpanID, 8}, {colStart, 8},
		{colEnd, 8}, {colKind, 1}, {colStatus, 1}, {colName, 4}, {colAttrCounts, 4}},
	behaviorpb.Signal_SIGNAL_LOGS: {{colTraceID, 16}, {colSpanID, 8}, {colStart, 8}, {colSeverity, 1},
		{colEventName, 4}, {colBody, 4}, {colAttrCounts, 4}},
	behaviorpb.Signal_SIGNAL_METRICS: {{colStart, 8}, {colName, 4}, {colValue, 8}, {colExemplarTraceID, 16},
		{colExemplarSpanID, 8}, {colAttrCounts, 4}},
}

// grow reserves room for n rows in the fixed-width columns.
func (e *encoder) grow(n int) {
	for _, w := range rowWidths[e.signal] {
		e.cols[w.col] = slices.Grow(e.cols[w.col], w.width*n)
	}
	e.rows = slices.Grow(e.rows, n)
}

// dropFrom deletes the entries of a front cache whose code is `from` or later. Rollbacks are
// rare (one per request that fills up) and the caches small.
func dropFrom[K comparable](m map[K]uint32, from int) {
	for k, c := range m {
		if int(c) >= from {
			delete(m, k)
		}
	}
}

func varintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}
