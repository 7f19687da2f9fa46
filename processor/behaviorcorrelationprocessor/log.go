package behaviorcorrelationprocessor // import "github.com/behavior-correlation/otelcol-behavior/processor/behaviorcorrelationprocessor"

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// throttle lets one message per key through per interval and counts the ones it held back,
// so that a sidecar outage at thousands of batches per second logs a line now and then.
type throttle struct {
	every time.Duration

	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

func newThrottle(every time.Duration) *throttle {
	return &throttle{every: every, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

func (t *throttle) log(logger *zap.Logger, key string, level zapcore.Level, msg string, fields ...zap.Field) {
	if !logger.Core().Enabled(level) {
		return
	}
	now := time.Now()
	t.mu.Lock()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.every {
		t.suppressed[key]++
		t.mu.Unlock()
		return
	}
	held := t.suppressed[key]
	t.last[key] = now
	t.suppressed[key] = 0
	t.mu.Unlock()
	if held > 0 {
		fields = append(fields, zap.Int("similar_messages_suppressed", held))
	}
	logger.Log(level, msg, fields...)
}
