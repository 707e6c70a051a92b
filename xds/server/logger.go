package server

import (
	"fmt"

	"github.com/go-logr/logr"
)

// cpLogger adapts logr to go-control-plane's printf-style log.Logger.
// go-control-plane logs every watch at Info; those go to V(1). Its lines
// can quote a request (resource names a client chose): each is bounded to
// maxCPLine bytes, and its warnings and errors are rate-limited per format.
type cpLogger struct {
	log   logr.Logger
	limit *logLimiter
}

// maxCPLine bounds one go-control-plane log message.
const maxCPLine = 2 << 10

// Debugf implements log.Logger.
func (l cpLogger) Debugf(format string, args ...any) {
	l.at(2, format, args)
}

// Infof implements log.Logger.
func (l cpLogger) Infof(format string, args ...any) {
	l.at(1, format, args)
}

// Warnf implements log.Logger.
func (l cpLogger) Warnf(format string, args ...any) {
	if l.limit == nil || l.limit.allow("cp/"+format) {
		l.at(0, format, args)
	}
}

// Errorf implements log.Logger.
func (l cpLogger) Errorf(format string, args ...any) {
	if l.limit == nil || l.limit.allow("cp/"+format) {
		l.log.Error(nil, truncateTo(fmt.Sprintf(format, args...), maxCPLine))
	}
}

func (l cpLogger) at(level int, format string, args []any) {
	if v := l.log.V(level); v.Enabled() {
		v.Info(truncateTo(fmt.Sprintf(format, args...), maxCPLine))
	}
}
