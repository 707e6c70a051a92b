package envtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMissingAssetsSayWhatToRun(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	_, err := assetsDir("/nowhere")
	if err == nil || !strings.Contains(err.Error(), "run make envtest-assets") ||
		!strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("got %v, want an error naming the binaries and make envtest-assets", err)
	}
}

func TestRepoRootHasGoMod(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(root, "test/envtest") {
		t.Errorf("RepoRoot() = %s, want the module root", root)
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(context.Background(), time.Second, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("Poll: err %v after %d calls, want nil after 3", err, calls)
	}
	err := Poll(context.Background(), 100*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Errorf("Poll timeout: %v, want the last error", err)
	}
}
