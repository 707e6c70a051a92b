// Package app composes the operator from its parts: the reconcilers, the
// xDS pipeline (inputs controller, runner, server) and the manager's cache
// settings. It is the only library package that may import every layer;
// cmd/manager and the tests that run the whole pipeline call it, and no
// other package imports it.
package app
