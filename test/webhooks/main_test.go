// Package webhooks tests Capstan's admission webhooks against a real
// kube-apiserver: envtest installs the webhook configurations that
// `kubectl kustomize config/webhook` renders (the generated manifests with the
// selectors the markers cannot express), pointed at a manager that serves
// them with webhook/handler.
package webhooks

import (
	"os"
	"testing"

	"github.com/capstanmesh/capstan/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) { os.Exit(envtest.RunWithWebhooks(m, &env)) }
