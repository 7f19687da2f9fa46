package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configtls"
)

// FailureMode says what happens to a batch the sidecar did not annotate.
type FailureMode string

const (
	// FailureModeOpen passes the batch on unannotated (and counts it).
	FailureModeOpen FailureMode = "open"
	// FailureModeClosed returns the error to the pipeline, which refuses the batch.
	FailureModeClosed FailureMode = "closed"
)

const (
	defaultTimeout         = 200 * time.Millisecond
	defaultMaxMessageBytes = 4 << 20
	defaultMaxInflight     = 4

	// minMaxMessageBytes leaves room for the fixed part of a request and a few rows.
	minMaxMessageBytes = 1 << 10
	maxMaxInflight     = 1024
)

// Config of the behaviorcorrelation processor.
type Config struct {
	// Endpoint is the sidecar's gRPC address, host:port. Required.
	Endpoint string `mapstructure:"endpoint"`
	// TLS of the connection. Plaintext by default (tls.insecure: true), for a sidecar on
	// loopback or in the same pod; a warning is logged when the endpoint is not loopback.
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// Timeout bounds a batch's exchange with the sidecar: all its Correlate requests (chunks),
	// the waits for in-flight slots included, end by one deadline.
	Timeout time.Duration `mapstructure:"timeout"`
	// FailureMode is open (pass data on unannotated, count it) or closed (return the error).
	FailureMode FailureMode `mapstructure:"failure_mode"`
	// MaxMessageBytes bounds each request's serialized size; a batch is split into requests
	// under it (and under the limit the sidecar announces, whichever is smaller).
	MaxMessageBytes int `mapstructure:"max_message_bytes"`
	// MaxInflight bounds the Correlate requests in flight at once, per processor instance.
	MaxInflight int `mapstructure:"max_inflight"`
	// Signals turns annotation on or off per signal; a signal turned off passes through
	// untouched and is never sent.
	Signals SignalsConfig `mapstructure:"signals"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SignalsConfig turns annotation on per signal.
type SignalsConfig struct {
	Traces  bool `mapstructure:"traces"`
	Logs    bool `mapstructure:"logs"`
	Metrics bool `mapstructure:"metrics"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	tls := configtls.NewDefaultClientConfig()
	tls.Insecure = true
	return &Config{
		TLS:             tls,
		Timeout:         defaultTimeout,
		FailureMode:     FailureModeOpen,
		MaxMessageBytes: defaultMaxMessageBytes,
		MaxInflight:     defaultMaxInflight,
		Signals:         SignalsConfig{Traces: true, Logs: true, Metrics: true},
	}
}

// Validate checks the configuration at start-up.
func (cfg *Config) Validate() error {
	var errs []error
	if err := validateEndpoint(cfg.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", cfg.Timeout))
	}
	switch cfg.FailureMode {
	case FailureModeOpen, FailureModeClosed:
	default:
		errs = append(errs, fmt.Errorf("failure_mode must be %q or %q, got %q", FailureModeOpen, FailureModeClosed, cfg.FailureMode))
	}
	if cfg.MaxMessageBytes < minMaxMessageBytes || cfg.MaxMessageBytes > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("max_message_bytes must be between %d and %d, got %d", minMaxMessageBytes, math.MaxInt32, cfg.MaxMessageBytes))
	}
	if cfg.MaxInflight < 1 || cfg.MaxInflight > maxMaxInflight {
		errs = append(errs, fmt.Errorf("max_inflight must be between 1 and %d, got %d", maxMaxInflight, cfg.MaxInflight))
	}
	return errors.Join(errs...)
}

func validateEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("endpoint is required (host:port of the sidecar)")
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q is not host:port: %w", endpoint, err)
	}
	if host == "" {
		return fmt.Errorf("endpoint %q has no host", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("endpoint %q: port %q is not a number between 1 and 65535", endpoint, port)
	}
	return nil
}

// isLoopback reports whether the endpoint's host is a loopback address or "localhost".
func isLoopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
