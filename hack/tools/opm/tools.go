//go:build tools

// Package tools pins opm (operator-registry), built by `make catalog`:
// go build -tags "json1 containers_image_openpgp" .../cmd/opm.
package tools

import _ "github.com/operator-framework/operator-registry/cmd/opm"
