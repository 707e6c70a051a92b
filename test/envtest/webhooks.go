package envtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/webhook/handler"
)

// RunWithWebhooks is Run with Capstan's admission webhooks in front of the
// API server: envtest installs the webhook configurations that
// `kubectl kustomize config/webhook` renders (the generated manifests with
// the selectors the markers cannot express), and a manager of its own
// serves them with webhook/handler for the whole package.
func RunWithWebhooks(m *testing.M, env **Env) int {
	return RunWithWebhooksAnd(m, env, Options{}, nil)
}

// RunWithWebhooksAnd is RunWithWebhooks with the API server started with
// opts (its Webhooks are Capstan's, whatever opts says) and, when setup is
// not nil, setup run once the webhooks are served and before the tests;
// the function setup returns is called after the tests, before the API
// server stops.
func RunWithWebhooksAnd(m *testing.M, env **Env, opts Options, setup func(*Env) (func() error, error)) int {
	hooks, err := loadWebhooks()
	if err != nil {
		fmt.Fprintf(os.Stderr, "webhooks: %v\n", err)
		return 1
	}
	opts.Webhooks = &hooks
	if *env, err = StartWith(opts); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: %v\n", err)
		return 1
	}
	stop, err := startWebhookManager(*env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "webhook manager: %v\n", err)
		_ = (*env).Stop()
		return 1
	}
	teardown := func() error { return nil }
	if setup != nil {
		if teardown, err = setup(*env); err != nil {
			fmt.Fprintf(os.Stderr, "setting up: %v\n", err)
			_ = errors.Join(stop(), (*env).Stop())
			return 1
		}
	}
	code := m.Run()
	if err := errors.Join(teardown(), stop(), (*env).Stop()); err != nil {
		fmt.Fprintf(os.Stderr, "stopping: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// loadWebhooks renders config/webhook with the kubectl built for envtest
// and returns its webhook configurations.
func loadWebhooks() (crenvtest.WebhookInstallOptions, error) {
	var opts crenvtest.WebhookInstallOptions
	root, err := RepoRoot()
	if err != nil {
		return opts, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", filepath.Join(root, "config", "webhook"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return opts, fmt.Errorf("kubectl kustomize config/webhook: %w: %s (run make envtest-assets)", err, stderr.String())
	}
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return opts, fmt.Errorf("parsing config/webhook: %w", err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			c := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), c); err != nil {
				return opts, fmt.Errorf("parsing %s: %w", meta.Kind, err)
			}
			opts.MutatingWebhooks = append(opts.MutatingWebhooks, c)
		case "ValidatingWebhookConfiguration":
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), c); err != nil {
				return opts, fmt.Errorf("parsing %s: %w", meta.Kind, err)
			}
			opts.ValidatingWebhooks = append(opts.ValidatingWebhooks, c)
		}
	}
	if len(opts.MutatingWebhooks) != 1 || len(opts.ValidatingWebhooks) != 1 {
		return opts, fmt.Errorf("config/webhook has %d mutating and %d validating configurations, want 1 and 1",
			len(opts.MutatingWebhooks), len(opts.ValidatingWebhooks))
	}
	return opts, nil
}

// startWebhookManager serves the webhooks where envtest pointed them, and
// returns a function that stops the manager.
func startWebhookManager(e *Env) (func() error, error) {
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    e.Webhooks.LocalServingHost,
			Port:    e.Webhooks.LocalServingPort,
			CertDir: e.Webhooks.LocalServingCertDir,
		}),
	})
	if err != nil {
		return nil, err
	}
	if err := handler.SetupWebhooks(mgr, handler.Options{}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-time.After(30 * time.Second):
			return errors.New("the manager did not stop within 30s")
		}
	}
	started := mgr.GetWebhookServer().StartedChecker()
	err = Poll(ctx, 30*time.Second, func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("the manager exited: %w", err)
		default:
		}
		return started(nil)
	})
	if err == nil {
		syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
		defer syncCancel()
		if !mgr.GetCache().WaitForCacheSync(syncCtx) {
			err = errors.New("caches did not sync within 30s")
		}
	}
	if err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

// LoadWebhooks returns Capstan's webhook configurations as envtest installs
// them (for a program that serves them itself, like the playground).
func LoadWebhooks() (crenvtest.WebhookInstallOptions, error) { return loadWebhooks() }
