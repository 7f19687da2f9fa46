package behaviorcorrelationprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	defaults := createDefaultConfig().(*Config)
	withEndpoint := *defaults
	withEndpoint.Endpoint = "localhost:50051"

	custom := *defaults
	custom.Endpoint = "sidecar.observability.svc:7443"
	custom.TLS.Insecure = false
	custom.TLS.CAFile = "/etc/sidecar/ca.pem"
	custom.TLS.ServerName = "sidecar"
	custom.Timeout = 500 * time.Millisecond
	custom.FailureMode = FailureModeClosed
	custom.MaxMessageBytes = 1 << 20
	custom.MaxInflight = 8
	custom.Signals = SignalsConfig{Traces: true}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: &withEndpoint},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: &custom},
		{id: component.NewIDWithName(metadata.Type, "missing_endpoint"), wantErr: "endpoint is required"},
		{id: component.NewIDWithName(metadata.Type, "bad_failure_mode"), wantErr: `failure_mode must be "open" or "closed", got "ajar"`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			if tt.wantErr != "" {
				require.ErrorContains(t, confmap.Validate(cfg), tt.wantErr)
				return
			}
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, 200*time.Millisecond, cfg.Timeout)
	assert.Equal(t, FailureModeOpen, cfg.FailureMode)
	assert.Equal(t, 4<<20, cfg.MaxMessageBytes)
	assert.Equal(t, 4, cfg.MaxInflight)
	assert.True(t, cfg.TLS.Insecure, "plaintext by default, for a sidecar on loopback")
	assert.Equal(t, SignalsConfig{Traces: true, Logs: true, Metrics: true}, cfg.Signals)
	require.ErrorContains(t, cfg.Validate(), "endpoint is required")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"ipv6 endpoint", func(c *Config) { c.Endpoint = "[::1]:50051" }, ""},
		{"no port", func(c *Config) { c.Endpoint = "localhost" }, `endpoint "localhost" is not host:port`},
		{"no host", func(c *Config) { c.Endpoint = ":50051" }, `endpoint ":50051" has no host`},
		{"bad port", func(c *Config) { c.Endpoint = "localhost:http" }, `port "http" is not a number`},
		{"port out of range", func(c *Config) { c.Endpoint = "localhost:70000" }, `port "70000" is not a number between 1 and 65535`},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout must be positive"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout must be positive"},
		{"failure mode", func(c *Config) { c.FailureMode = "" }, "failure_mode must be"},
		{"tiny messages", func(c *Config) { c.MaxMessageBytes = 100 }, "max_message_bytes must be between 1024"},
		{"huge messages", func(c *Config) { c.MaxMessageBytes = 1 << 40 }, "max_message_bytes must be between"},
		{"no inflight", func(c *Config) { c.MaxInflight = 0 }, "max_inflight must be between 1 and 1024"},
		{"too many inflight", func(c *Config) { c.MaxInflight = 5000 }, "max_inflight must be between 1 and 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Endpoint = "localhost:50051"
			tt.change(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Timeout = 0
	cfg.MaxInflight = 0
	err := cfg.Validate()
	require.ErrorContains(t, err, "endpoint is required")
	require.ErrorContains(t, err, "timeout must be positive")
	require.ErrorContains(t, err, "max_inflight")
}
