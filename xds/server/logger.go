package server

import (
	"fmt"

	"github.com/go-logr/logr"
)

// cpLogger adapts logr to go-control-plane's printf-style log.Logger.
// go-control-plane logs every watch at Info; those go to V(1).
type cpLogger struct {
	log logr.Logger
}

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
	l.at(0, format, args)
}

// Errorf implements log.Logger.
func (l cpLogger) Errorf(format string, args ...any) {
	l.log.Error(nil, fmt.Sprintf(format, args...))
}

func (l cpLogger) at(level int, format string, args []any) {
	if v := l.log.V(level); v.Enabled() {
		v.Info(fmt.Sprintf(format, args...))
	}
}
