// Package behaviorcorrelationprocessor sends a columnar projection of each batch of spans, log
// records and metric data points to the behavior correlation sidecar (proto/behavior/v1) and
// writes the annotations it returns onto the items.
//
//go:generate ../../scripts/processor/mdatagen.sh
package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"
