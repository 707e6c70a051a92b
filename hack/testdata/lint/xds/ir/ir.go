// Package ir is a lint fixture: its path matches the depguard rule for
// xds/ir, which may not import client-go. hack/lint-selftest.sh expects the
// report.
package ir

import "k8s.io/client-go/rest" // want depguard

// Config exists to use the import.
var Config = rest.Config{}
