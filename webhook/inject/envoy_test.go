package inject

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/capstanmesh/capstan/internal/envoytest"
)

// TestEnvoyAcceptsInjectedBootstraps runs the proxy container of every
// injected golden pod through the real Envoy in validate mode: its own
// arguments (the bootstrap in --config-yaml, log level, concurrency, …) after
// Kubernetes' $(VAR) expansion with the downward-API values of a running pod.
//
// Envoy opens the files the bootstrap names (the root CA of the xDS channel),
// so each of the container's volume mounts becomes a temporary directory
// holding the files its volume projects (ConfigMap items, the
// ServiceAccount token), and the mount paths in the arguments are rewritten
// to those directories: a bootstrap naming a file that its volumes do not
// provide fails as it would in the pod.
func TestEnvoyAcceptsInjectedBootstraps(t *testing.T) {
	envoy := envoytest.Path(t)
	paths, err := filepath.Glob(filepath.Join("testdata", "*.injected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("%d injected golden pods, want at least 10", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".injected.yaml"), func(t *testing.T) {
			t.Parallel()
			pod := readInjectedPod(t, path)
			proxy := proxyOf(t, pod)
			if len(proxy.Command) != 1 || proxy.Command[0] != "envoy" {
				t.Fatalf("%s: proxy command %q, want [envoy]", path, proxy.Command)
			}
			args := envoytest.ExpandArgs(proxy.Args, downwardEnv(t, pod, &proxy))
			args = mountsInTempDirs(t, pod, &proxy, args)
			if err := envoytest.Validate(t.Context(), envoy, args...); err != nil {
				t.Errorf("Envoy refuses the proxy of %s: %v", path, err)
			}
		})
	}
}

func readInjectedPod(t *testing.T, path string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict(b, pod); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pod
}

// downwardEnv is the container's environment as the kubelet would set it for
// the pod once scheduled (a generated name, an IP).
func downwardEnv(t *testing.T, pod *corev1.Pod, c *corev1.Container) map[string]string {
	t.Helper()
	fields := map[string]string{
		"metadata.name":           cmp.Or(pod.Name, pod.GenerateName+"x7k2p"),
		"metadata.namespace":      cmp.Or(pod.Namespace, "default"),
		"status.podIP":            "10.244.1.23",
		"spec.serviceAccountName": cmp.Or(pod.Spec.ServiceAccountName, "default"),
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			v, ok := fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("env %s: no test value for field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case optionalConfigMapKey(e):
			env[e.Name] = "" // no ConfigMap here: as the kubelet does for a missing optional key
		default:
			t.Fatalf("env %s: unsupported source", e.Name)
		}
	}
	return env
}

// mountsInTempDirs gives each volume mount of the container a temporary
// directory with the files its volume provides, and rewrites the mount paths
// in args to those directories.
func mountsInTempDirs(t *testing.T, pod *corev1.Pod, c *corev1.Container, args []string) []string {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := slices.Clone(c.VolumeMounts)
	// Longer paths first, so that a mount inside another one wins.
	slices.SortFunc(mounts, func(a, b corev1.VolumeMount) int { return len(b.MountPath) - len(a.MountPath) })
	var pairs []string
	for _, m := range mounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("mount %s: no volume %s", m.MountPath, m.Name)
		}
		dir := t.TempDir()
		for _, f := range volumeFiles(v) {
			// The contents are not read by validation; the files must exist.
			if err := os.WriteFile(filepath.Join(dir, f), []byte("test file for "+f+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		pairs = append(pairs, strings.TrimSuffix(m.MountPath, "/")+"/", dir+"/")
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// volumeFiles are the file names a volume projects (none for an emptyDir).
func volumeFiles(v corev1.Volume) []string {
	var files []string
	keyPaths := func(items []corev1.KeyToPath) {
		for _, it := range items {
			files = append(files, it.Path)
		}
	}
	switch {
	case v.ConfigMap != nil:
		keyPaths(v.ConfigMap.Items)
	case v.Secret != nil:
		keyPaths(v.Secret.Items)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			switch {
			case s.ServiceAccountToken != nil:
				files = append(files, s.ServiceAccountToken.Path)
			case s.ConfigMap != nil:
				keyPaths(s.ConfigMap.Items)
			case s.Secret != nil:
				keyPaths(s.Secret.Items)
			}
		}
	}
	return files
}

// optionalConfigMapKey reports an env var read from an optional ConfigMap key.
func optionalConfigMapKey(e corev1.EnvVar) bool {
	ref := e.ValueFrom.ConfigMapKeyRef
	return ref != nil && ref.Optional != nil && *ref.Optional
}
