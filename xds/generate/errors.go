package generate

import (
	"fmt"
	"strings"

	"github.com/capstanmesh/capstan/xds/ir"
)

// Error is a problem generation found in the model, attributed to the API
// object it came from so that translation can report it on that object's
// status. Source is nil when no object is known.
//
// A Warning is not a mistake: the object's config was generated, but a part
// of it that one kind of client cannot honour (a proxyless gRPC client, say)
// was left out of that client's config. Its status should say so without
// calling the object broken.
type Error struct {
	Source  *ir.ObjectRef
	Err     error
	Warning bool
}

// Error returns "<source>: <err>".
func (e *Error) Error() string {
	if e.Source == nil {
		return e.Err.Error()
	}
	return e.Source.String() + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every per-object problem of one ForProxy call, in the order found.
type Errors []*Error

// Error joins the messages, one per line.
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the errors for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// BySource groups the errors by the object they name; errors without a source
// are under the zero ObjectRef.
func (es Errors) BySource() map[ir.ObjectRef][]error {
	out := map[ir.ObjectRef][]error{}
	for _, e := range es {
		var key ir.ObjectRef
		if e.Source != nil {
			key = *e.Source
		}
		out[key] = append(out[key], e.Err)
	}
	return out
}

// Split separates the warnings from the errors, keeping their order.
func (es Errors) Split() (errs, warnings Errors) {
	for _, e := range es {
		if e.Warning {
			warnings = append(warnings, e)
		} else {
			errs = append(errs, e)
		}
	}
	return errs, warnings
}

// errorList collects Errors, dropping exact duplicates (the same route seen on two ports).
type errorList struct {
	errs Errors
	seen map[string]bool
}

func (l *errorList) add(src *ir.ObjectRef, format string, args ...any) {
	l.addErr(src, fmt.Errorf(format, args...))
}

func (l *errorList) addErr(src *ir.ObjectRef, err error) { l.addError(&Error{Source: src, Err: err}) }

// warn records a part of src's config that was left out for this client.
func (l *errorList) warn(src *ir.ObjectRef, format string, args ...any) {
	l.addError(&Error{Source: src, Err: fmt.Errorf(format, args...), Warning: true})
}

func (l *errorList) addError(e *Error) {
	key := e.Error()
	if l.seen[key] {
		return
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[key] = true
	l.errs = append(l.errs, e)
}

// err returns the collected errors, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs
}

// refOf returns a pointer to a copy of r, for Error.Source.
func refOf(r ir.ObjectRef) *ir.ObjectRef { return &r }

// serviceRef names a Kubernetes Service.
func serviceRef(s *ir.Service) *ir.ObjectRef {
	return &ir.ObjectRef{Kind: "Service", Namespace: s.Namespace, Name: s.Name}
}

// podRef names the pod of a proxy.
func podRef(p *ir.Proxy) *ir.ObjectRef {
	return &ir.ObjectRef{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
}
