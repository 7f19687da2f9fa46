package behaviorcorrelationprocessor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// valueTextVectors is proto/testdata/value_text.json, shared with the sidecar's tests.
type valueTextVectors struct {
	Cases []struct {
		Name      string          `json:"name"`
		Value     json.RawMessage `json:"value"`
		ValueType int             `json:"value_type"`
		Text      string          `json:"text"`
		Body      string          `json:"body"`
	} `json:"cases"`
}

func TestValueTextVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "proto", "testdata", "value_text.json"))
	require.NoError(t, err)
	var vectors valueTextVectors
	require.NoError(t, json.Unmarshal(raw, &vectors))
	require.NotEmpty(t, vectors.Cases)
	for _, c := range vectors.Cases {
		t.Run(c.Name, func(t *testing.T) {
			v := anyValue(t, c.Value)
			if c.Name == "kvlist repeated key" {
				require.Equal(t, 3, v.Map().Len(), "the map keeps the repeated key, as the wire form can")
			}
			assert.Equal(t, c.ValueType, int(valueType(v)), "value type")
			assert.Equal(t, c.Text, string(appendPlainText(nil, v)), "attribute text")
			assert.Equal(t, c.Body, string(appendBodyText(nil, v)), "body text")

			// What the encoder puts in the string table is the same text.
			e := newEncoder(0, newProjection(nil), 1)
			assert.Equal(t, c.Text, e.strings[e.valueCode(v)], "encoded attribute text")
			assert.Equal(t, c.Body, e.strings[e.bodyCode(v)], "encoded body text")
		})
	}
}

// anyValue reads an OTLP JSON AnyValue (protojson) with pdata's own OTLP JSON decoder, as
// the body of a log record; it keeps a kvlist's repeated keys as the wire form can have them.
func anyValue(t *testing.T, raw json.RawMessage) pcommon.Value {
	doc := `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":` + string(raw) + `}]}]}]}`
	logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(doc))
	require.NoError(t, err)
	return logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body()
}

func TestPyReprAgainstParse(t *testing.T) {
	// Every repr must read back as the same double (round trip), whatever its form.
	for _, f := range []float64{0.1, 1e-5, 1e-4, 123.456, 1e16, 1.5e300, 5e-324, 2.5e-5, 9007199254740993, 1e15 + 0.5, -7.25e-10, 4.35, 1e22, 1e23} {
		text := string(appendPyRepr(nil, f))
		back, err := strconv.ParseFloat(text, 64)
		require.NoError(t, err, text)
		assert.Equal(t, f, back, text)
	}
}

func TestValidText(t *testing.T) {
	assert.Equal(t, "ok ✓", validText("ok ✓"))
	assert.Equal(t, "a\uFFFDb", validText("a\xffb"))
	e := newEncoder(0, newProjection(nil), 1)
	c := e.code("bad\xfe")
	assert.Equal(t, "bad\uFFFD", e.strings[c])
	assert.Equal(t, c, e.code("bad\xfe"), "the original string keeps its code")
}
