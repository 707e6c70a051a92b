// Package envoybin finds the real Envoy binary that tests run: the one named
// by CAPSTAN_ENVOY (which the Makefile exports), else bin/envoy-<version> at
// the root of the module.
package envoybin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Version is the Envoy version the Makefile installs.
const Version = "1.40.0"

// EnvVar names the Envoy binary.
const EnvVar = "CAPSTAN_ENVOY"

// Path returns the Envoy binary's path, or an error saying how to get one.
func Path() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvVar, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", "envoy-"+Version)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no Envoy at %s (run make envoy): %w", p, err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
