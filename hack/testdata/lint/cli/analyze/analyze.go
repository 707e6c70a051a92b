// Package analyze is a lint fixture: its path matches the depguard rules
// for the CLI (no xDS server) and for its pure analyzers (no client).
// hack/lint-selftest.sh expects both reports.
package analyze

import (
	"github.com/capstanmesh/capstan/xds/server" // want depguard
	"k8s.io/client-go/rest"                     // want depguard
)

// Config and Limits exist to use the imports.
var (
	Config = rest.Config{}
	Limits = server.Limits{}
)
