package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor/internal/behaviorpb"
)

// protocolVersion is the wire contract this processor speaks (proto/behavior/v1).
const protocolVersion = uint32(behaviorpb.ProtocolVersion_PROTOCOL_VERSION_1)

const (
	// startHelloTimeout bounds the Hello at start-up (a sidecar that just started may be
	// loading its spec index); later Hellos get the request timeout.
	startHelloTimeout = 2 * time.Second
	// Hello retries while the sidecar is unreachable back off between these bounds.
	minHelloBackoff = 100 * time.Millisecond
	maxHelloBackoff = 5 * time.Second
	// minRecvBytes is the least a response may be: annotations are ~40 bytes per row plus
	// strings, so a chunk of small rows can answer with more bytes than it asked with.
	minRecvBytes = 64 << 20
)

// session is what one successful Hello established; it is replaced, never modified.
type session struct {
	specVersion     string
	driftKinds      []string
	projection      *projection
	maxRequestBytes int
}

// withProjection is a copy of s with another projection.
func (s *session) withProjection(p *projection) *session {
	c := *s
	c.projection = p
	return &c
}

// versionError is a sidecar that does not speak this processor's protocol version.
type versionError struct {
	endpoint string
	sidecar  uint32 // 0 when the sidecar refused without saying its own
	detail   string
}

func (e *versionError) Error() string {
	if e.sidecar != 0 {
		return fmt.Sprintf("behaviorcorrelation: the sidecar at %s speaks protocol version %d, this processor speaks version %d (behavior.v%d); deploy a sidecar and a collector built from the same proto",
			e.endpoint, e.sidecar, protocolVersion, protocolVersion)
	}
	return fmt.Sprintf("behaviorcorrelation: the sidecar at %s refused protocol version %d, the only version this processor speaks (FAILED_PRECONDITION: %s); deploy a sidecar and a collector built from the same proto",
		e.endpoint, protocolVersion, e.detail)
}

// sidecarClient is the connection to the sidecar, the Hello state and the in-flight bound.
type sidecarClient struct {
	cfg    *Config
	logger *zap.Logger
	name   string

	conn  *grpc.ClientConn
	rpc   behaviorpb.BehaviorCorrelationClient
	slots chan struct{}

	// current is nil until a Hello succeeds, and again after the sidecar refuses our version.
	current atomic.Pointer[session]
	// downReason says why there is no session (reasonUnavailable or reasonVersionMismatch).
	downReason atomic.Pointer[string]

	helloMu      sync.Mutex // one Hello at a time; others do not wait for it
	nextHello    time.Time  // guarded by helloMu
	helloBackoff time.Duration
	warn         *throttle
}

func newSidecarClient(cfg *Config, logger *zap.Logger, name string) *sidecarClient {
	c := &sidecarClient{
		cfg:    cfg,
		logger: logger,
		name:   name,
		slots:  make(chan struct{}, cfg.MaxInflight),
		warn:   newThrottle(30 * time.Second),
	}
	reason := reasonUnavailable
	c.downReason.Store(&reason)
	return c
}

// start dials (without blocking) and says Hello. A sidecar that does not speak our version
// is an error; one that cannot be reached is a warning, and Hello is retried before later
// requests.
func (c *sidecarClient) start(ctx context.Context) error {
	tlsCfg, err := c.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("behaviorcorrelation: tls: %w", err)
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	} else if !isLoopback(c.cfg.Endpoint) {
		c.logger.Warn("The connection to the sidecar is plaintext and the endpoint is not loopback; configure tls to encrypt it",
			zap.String("endpoint", c.cfg.Endpoint))
	}
	conn, err := grpc.NewClient(c.cfg.Endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(c.cfg.MaxMessageBytes),
			grpc.MaxCallRecvMsgSize(max(minRecvBytes, 4*c.cfg.MaxMessageBytes)),
		),
	)
	if err != nil {
		return fmt.Errorf("behaviorcorrelation: endpoint %q: %w", c.cfg.Endpoint, err)
	}
	c.conn = conn
	c.rpc = behaviorpb.NewBehaviorCorrelationClient(conn)

	helloCtx, cancel := context.WithTimeout(ctx, max(startHelloTimeout, c.cfg.Timeout))
	defer cancel()
	c.helloMu.Lock()
	defer c.helloMu.Unlock()
	if err := c.hello(helloCtx); err != nil {
		var mismatch *versionError
		if errors.As(err, &mismatch) {
			_ = conn.Close()
			c.conn = nil
			return err
		}
		c.logger.Warn("The sidecar did not answer Hello at start-up; data passes unannotated until it does (Hello is retried before later batches)",
			zap.String("endpoint", c.cfg.Endpoint), zap.Error(err))
	}
	return nil
}

func (c *sidecarClient) shutdown() error {
	c.helloMu.Lock()
	defer c.helloMu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// ready returns the current session, or says Hello first when there is none and the
// back-off allows it. Without a session it returns why; it never waits for another
// goroutine's Hello.
func (c *sidecarClient) ready(ctx context.Context) (*session, string) {
	if s := c.current.Load(); s != nil {
		return s, ""
	}
	if !c.helloMu.TryLock() {
		return nil, *c.downReason.Load()
	}
	defer c.helloMu.Unlock()
	if s := c.current.Load(); s != nil {
		return s, ""
	}
	if c.conn == nil || time.Now().Before(c.nextHello) {
		return nil, *c.downReason.Load()
	}
	helloCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.hello(helloCtx); err != nil {
		var mismatch *versionError
		if errors.As(err, &mismatch) {
			c.warn.log(c.logger, "hello-version", zap.ErrorLevel, "The sidecar does not speak this processor's protocol version; data passes unannotated", zap.Error(err))
		} else {
			c.warn.log(c.logger, "hello", zap.WarnLevel, "The sidecar is unreachable; data passes unannotated", zap.String("endpoint", c.cfg.Endpoint), zap.Error(err))
		}
		return nil, *c.downReason.Load()
	}
	c.logger.Info("The sidecar answered Hello; annotating", zap.String("endpoint", c.cfg.Endpoint))
	return c.current.Load(), ""
}

// hello asks the sidecar for its version and settings; the caller holds helloMu.
func (c *sidecarClient) hello(ctx context.Context) error {
	resp, err := c.rpc.Hello(ctx, &behaviorpb.HelloRequest{ProtocolVersion: protocolVersion, Client: c.name})
	if err == nil && resp.GetProtocolVersion() != protocolVersion {
		err = &versionError{endpoint: c.cfg.Endpoint, sidecar: resp.GetProtocolVersion()}
	} else if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition {
		err = &versionError{endpoint: c.cfg.Endpoint, detail: st.Message()}
	}
	if err != nil {
		reason := reasonUnavailable
		var mismatch *versionError
		if errors.As(err, &mismatch) {
			reason = reasonVersionMismatch
			c.helloBackoff = maxHelloBackoff
		} else {
			c.helloBackoff = min(maxHelloBackoff, max(minHelloBackoff, 2*c.helloBackoff))
		}
		c.downReason.Store(&reason)
		c.nextHello = time.Now().Add(c.helloBackoff)
		return err
	}
	c.helloBackoff = 0
	limit := c.cfg.MaxMessageBytes
	if m := resp.GetMaxRequestBytes(); m > 0 && m < uint64(limit) {
		limit = int(m)
	}
	c.current.Store(&session{
		specVersion:     resp.GetSpecVersion(),
		driftKinds:      resp.GetDriftKindNames(),
		projection:      newProjection(resp.GetProjection()),
		maxRequestBytes: limit,
	})
	return nil
}

// forget drops the session (the sidecar refused our version mid-stream, e.g. after a
// redeploy), so that the next batch says Hello again.
func (c *sidecarClient) forget(s *session) {
	if c.current.CompareAndSwap(s, nil) {
		reason := reasonVersionMismatch
		c.downReason.Store(&reason)
		c.helloMu.Lock()
		c.nextHello = time.Time{}
		c.helloMu.Unlock()
	}
}

// useProjection installs the projection a response announced, if it is new.
func (c *sidecarClient) useProjection(p *behaviorpb.Projection) {
	for {
		s := c.current.Load()
		if s == nil || s.projection.version == p.GetVersion() {
			return
		}
		if c.current.CompareAndSwap(s, s.withProjection(newProjection(p))) {
			c.logger.Info("The sidecar announced a new projection",
				zap.Uint64("version", p.GetVersion()), zap.Bool("all_attributes", p.GetAllAttributes()),
				zap.Int("attribute_keys", len(p.GetAttributeKeys())))
			return
		}
	}
}

// minRequestTime is the least time left before the deadline worth sending a request with:
// less cannot be answered (a loopback round trip alone takes longer), and a request sent
// anyway only costs the sidecar work that nobody waits for.
const minRequestTime = time.Millisecond

// acquire takes an in-flight slot, or gives up when ctx ends first or too little of it is
// left once a slot is free. A slot freed by a request the sidecar timed out can come free an
// instant before the client's own deadline fires (and select picks at random when both are
// ready), so the time left is read from the clock, not only from ctx.Err.
func (c *sidecarClient) acquire(ctx context.Context) bool {
	select {
	case c.slots <- struct{}{}:
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || (ok && time.Until(dl) < minRequestTime) {
			c.release()
			return false
		}
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *sidecarClient) release() { <-c.slots }
