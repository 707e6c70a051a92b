// Package crd embeds Capstan's CustomResourceDefinitions (bases/, generated
// by `make manifests`), so that `capstanctl check` can tell whether the
// cluster's CRDs are the ones this build expects.
package crd

import "embed"

// Bases holds bases/*.yaml, one CRD per file.
//
//go:embed bases/*.yaml
var Bases embed.FS
