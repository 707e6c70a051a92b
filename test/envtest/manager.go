package envtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// StartManager starts a controller-runtime manager on the control plane
// with the controllers that setup registers, waits for its caches to sync,
// and stops it when t ends. Metrics, health probes and leader election are
// off; controller names need not be unique, so each test may start its own.
// With namespaces, the manager sees namespaced objects only there (and every
// cluster-scoped object), so managers of parallel tests stay apart.
func (e *Env) StartManager(t testing.TB, setup func(ctrl.Manager) error, namespaces ...string) ctrl.Manager {
	t.Helper()
	return e.StartManagerAs(t, e.Config, setup, namespaces...)
}

// StartManagerAs is StartManager with the manager's clients on cfg, e.g. a
// copy of Config that impersonates a ServiceAccount, so that the
// controllers run with that account's permissions.
func (e *Env) StartManagerAs(t testing.TB, cfg *rest.Config, setup func(ctrl.Manager) error, namespaces ...string) ctrl.Manager {
	t.Helper()
	var cacheOpts cache.Options
	if len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 e.Scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating a manager: %v", err)
	}
	if err := setup(mgr); err != nil {
		t.Fatalf("setting up controllers: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop within 30s")
		}
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("manager caches did not sync within 30s")
	}
	return mgr
}
