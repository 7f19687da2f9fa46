package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// The text of an attribute value or a log body, by the rules of the sidecar's
// sidecar/decode/values.py (plain_text, double_text, bytes_text, body_text): both sides must
// produce the same string for the same value, because the sidecar's OTLP decoders and its
// projection decoder have to build the same batch. proto/testdata/value_text.json holds the
// vectors both languages check.
//
// Every function appends to dst and returns it, so the hot path formats into one scratch
// buffer and allocates only when the string table meets a new string.

// valueTypes maps pdata's value types onto the protocol's ValueType numbers.
var valueTypes = [...]behaviorpb.ValueType{
	pcommon.ValueTypeEmpty:  behaviorpb.ValueType_VALUE_TYPE_EMPTY,
	pcommon.ValueTypeStr:    behaviorpb.ValueType_VALUE_TYPE_STRING,
	pcommon.ValueTypeInt:    behaviorpb.ValueType_VALUE_TYPE_INT,
	pcommon.ValueTypeDouble: behaviorpb.ValueType_VALUE_TYPE_DOUBLE,
	pcommon.ValueTypeBool:   behaviorpb.ValueType_VALUE_TYPE_BOOL,
	pcommon.ValueTypeMap:    behaviorpb.ValueType_VALUE_TYPE_KVLIST,
	pcommon.ValueTypeSlice:  behaviorpb.ValueType_VALUE_TYPE_ARRAY,
	pcommon.ValueTypeBytes:  behaviorpb.ValueType_VALUE_TYPE_BYTES,
}

// valueType is the protocol's ValueType of a pdata value.
func valueType(v pcommon.Value) behaviorpb.ValueType { return valueTypeOf(v.Type()) }

// valueTypeOf is the protocol's ValueType of a pdata value type.
func valueTypeOf(t pcommon.ValueType) behaviorpb.ValueType {
	if int(t) < len(valueTypes) {
		return valueTypes[t]
	}
	return behaviorpb.ValueType_VALUE_TYPE_EMPTY
}

// appendPlainText appends the attribute text of v (values.py plain_text): strings as they
// are, arrays as their elements' texts joined by ",", kvlists as compact JSON, the empty value
// as nothing.
func appendPlainText(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(dst, v.Str()...)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return appendDoubleText(dst, v.Double())
	case pcommon.ValueTypeBytes:
		return appendBase64(dst, v.Bytes())
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendPlainText(dst, s.At(i))
		}
		return dst
	case pcommon.ValueTypeMap:
		return appendJSON(dst, v)
	default:
		return dst
	}
}

// appendBodyText appends a log body as text (values.py body_text): arrays and kvlists as
// compact JSON, everything else as attribute text.
func appendBodyText(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
		return appendJSON(dst, v)
	default:
		return appendPlainText(dst, v)
	}
}

// appendDoubleText appends a double attribute (values.py double_text): integral values below
// 2^53 without a fraction ("3", "-0" is "0"), everything else as Python's repr.
func appendDoubleText(dst []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return appendPyRepr(dst, f)
}

// appendPyRepr appends Python's repr of a float: the shortest digits that round-trip (Go's
// shortest formatting picks the same digits), written in positional form unless the decimal
// exponent is below -4 or at least 16, and then as d.ddde±XX with at least two exponent
// digits; positional integral values keep ".0"; "nan", "inf", "-inf".
func appendPyRepr(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	sci := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±dd
	if sci[0] == '-' {
		dst = append(dst, '-')
		sci = sci[1:]
	}
	e := 0
	for sci[e] != 'e' {
		e++
	}
	exp, _ := strconv.Atoi(string(sci[e+1:]))
	var digitBuf [24]byte
	digits := append(digitBuf[:0], sci[0])
	if e > 1 {
		digits = append(digits, sci[2:e]...)
	}
	if exp < -4 || exp >= 16 {
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	point := exp + 1 // digits before the decimal point
	switch {
	case point <= 0:
		dst = append(dst, '0', '.')
		for range -point {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	case point < len(digits):
		dst = append(dst, digits[:point]...)
		dst = append(dst, '.')
		return append(dst, digits[point:]...)
	default:
		dst = append(dst, digits...)
		for range point - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	}
}

// appendBase64 appends bytes as standard padded base64 (values.py bytes_text).
func appendBase64(dst []byte, b pcommon.ByteSlice) []byte {
	raw := b.AsRaw()
	return base64.StdEncoding.AppendEncode(dst, raw)
}

// appendJSON appends v as Python's json.dumps(v, separators=(",", ":"), ensure_ascii=False)
// would write the plain value the sidecar builds from it: kvlists as objects (a repeated key
// keeps its first position and its last value, like a Python dict), bytes as base64 strings,
// doubles as repr (NaN, Infinity, -Infinity), the empty value as null.
func appendJSON(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendJSONString(dst, v.Str())
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return append(dst, "NaN"...)
		case math.IsInf(f, 1):
			return append(dst, "Infinity"...)
		case math.IsInf(f, -1):
			return append(dst, "-Infinity"...)
		}
		return appendPyRepr(dst, f)
	case pcommon.ValueTypeBytes:
		dst = append(dst, '"')
		dst = appendBase64(dst, v.Bytes())
		return append(dst, '"')
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		dst = append(dst, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, s.At(i))
		}
		return append(dst, ']')
	case pcommon.ValueTypeMap:
		return appendJSONObject(dst, v.Map())
	default:
		return append(dst, "null"...)
	}
}

func appendJSONObject(dst []byte, m pcommon.Map) []byte {
	dst = append(dst, '{')
	first := true
	if !hasRepeatedKey(m) {
		for k, val := range m.All() {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSON(dst, val)
		}
		return append(dst, '}')
	}
	// A Python dict built from the pairs: first position, last value.
	var keys []string
	last := make(map[string]pcommon.Value, m.Len())
	for k, val := range m.All() {
		if _, seen := last[k]; !seen {
			keys = append(keys, k)
		}
		last[k] = val
	}
	for _, k := range keys {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSON(dst, last[k])
	}
	return append(dst, '}')
}

// hasRepeatedKey reports whether a map holds a key twice (pdata allows it on the wire).
func hasRepeatedKey(m pcommon.Map) bool {
	n := m.Len()
	if n < 2 {
		return false
	}
	if n <= 16 {
		var keys [16]string
		i := 0
		for k := range m.All() {
			for _, seen := range keys[:i] {
				if seen == k {
					return true
				}
			}
			keys[i] = k
			i++
		}
		return false
	}
	seen := make(map[string]struct{}, n)
	for k := range m.All() {
		if _, ok := seen[k]; ok {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// appendJSONString appends s quoted the way Python's json module does with
// ensure_ascii=False: only '"', '\\' and control characters below 0x20 are escaped (\n, \r,
// \t, \b, \f by name, the rest as \u00XX); everything else, DEL and U+2028 included, is
// written as it is.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// validText returns s, or s with every invalid UTF-8 sequence replaced by U+FFFD: protobuf
// string fields must be valid UTF-8 (the sidecar's decoder would reject the message, and Go's
// marshaller refuses it).
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[:size]...)
		}
		s = s[size:]
	}
	return string(out)
}
