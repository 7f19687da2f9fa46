//go:build tools

// Package mdatagen pins the mdatagen version that generates the processor's
// internal/metadata package (see ../mdatagen.sh).
package mdatagen

import _ "go.opentelemetry.io/collector/cmd/mdatagen"
