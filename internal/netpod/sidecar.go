package netpod

import (
	"context"
	"fmt"
	"github.com/capstanmesh/capstan/internal/envoytest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// InitContainerName is the injected container that installs the capture rules.
const InitContainerName = "capstan-init"

// Volumes are what the harness can put where a pod's volumes would be:
// the kubelet's part, done by the test.
type Volumes struct {
	// Token returns a token of the pod's ServiceAccount for audience
	// (a projected serviceAccountToken source), valid expirationSeconds.
	Token func(ctx context.Context, audience string, expirationSeconds int64) (string, error)
	// ConfigMap returns the data of a ConfigMap of the pod's namespace.
	ConfigMap func(ctx context.Context, name string) (map[string]string, error)
}

// Container is a container of an injected pod turned into a command for a
// network namespace: its args and environment with the kubelet's $(VAR)
// expansion done, and every volume mount path replaced by a directory
// holding what the kubelet would have mounted there (we cannot mount into
// a shared file system, so Mounts maps each mount path to its directory).
type Container struct {
	Name    string
	Command []string
	Args    []string
	Env     []string
	// Mounts maps a mount path of the spec to the directory that stands for it.
	Mounts map[string]string
	// UID and GID the container runs as (securityContext), -1 when unset.
	UID, GID int64
}

// FindContainer returns the container or init container called name.
func FindContainer(pod *corev1.Pod, name string) (*corev1.Container, bool) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i], true
			}
		}
	}
	return nil, false
}

// PrepareContainer resolves container name of pod: the downward API
// values of its environment, $(VAR) references in its args, and its
// volumes, written below dir (readable by the container's user).
func PrepareContainer(ctx context.Context, pod *corev1.Pod, name, dir string, vols Volumes) (*Container, error) {
	c, ok := FindContainer(pod, name)
	if !ok {
		return nil, fmt.Errorf("pod %s/%s has no container %s", pod.Namespace, pod.Name, name)
	}
	out := &Container{Name: name, UID: -1, GID: -1, Mounts: map[string]string{}}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			out.UID = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			out.GID = *sc.RunAsGroup
		}
	}
	for _, m := range c.VolumeMounts {
		d, err := materialise(ctx, pod, m.Name, filepath.Join(dir, m.Name), out.UID, out.GID, vols)
		if err != nil {
			return nil, err
		}
		out.Mounts[m.MountPath] = d
	}
	remap := out.remapper()
	env := map[string]string{}
	for _, e := range c.Env {
		v, err := envValue(pod, e, env)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", name, err)
		}
		env[e.Name] = remap.Replace(v)
		out.Env = append(out.Env, e.Name+"="+env[e.Name])
	}
	for _, s := range c.Command {
		out.Command = append(out.Command, remap.Replace(envoytest.Expand(s, env)))
	}
	for _, s := range c.Args {
		out.Args = append(out.Args, remap.Replace(envoytest.Expand(s, env)))
	}
	return out, nil
}

// remapper replaces mount paths (longest first) by their directories, as
// a path prefix: "/var/run/x" matches "/var/run/x" and "/var/run/x/…".
func (c *Container) remapper() *strings.Replacer {
	paths := make([]string, 0, len(c.Mounts))
	for p := range c.Mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var pairs []string
	for _, p := range paths {
		pairs = append(pairs, strings.TrimSuffix(p, "/")+"/", c.Mounts[p]+"/")
	}
	return strings.NewReplacer(pairs...)
}

// envValue is the value of one environment variable: literal (expanded
// against the earlier ones, as the kubelet does) or from the downward API.
func envValue(pod *corev1.Pod, e corev1.EnvVar, earlier map[string]string) (string, error) {
	if e.ValueFrom == nil {
		return envoytest.Expand(e.Value, earlier), nil
	}
	if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil && ref.Optional != nil && *ref.Optional {
		// The harness reads no ConfigMap for env vars: an optional key is
		// left empty, as the kubelet does when it is missing.
		return "", nil
	}
	if e.ValueFrom.FieldRef == nil {
		return "", fmt.Errorf("env %s: only fieldRef sources are supported", e.Name)
	}
	switch path := e.ValueFrom.FieldRef.FieldPath; path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.podIPs":
		ips := make([]string, len(pod.Status.PodIPs))
		for i, p := range pod.Status.PodIPs {
			ips[i] = p.IP
		}
		return strings.Join(ips, ","), nil
	default:
		return "", fmt.Errorf("env %s: field %s is not supported", e.Name, path)
	}
}

// materialise writes the content of volume name into dir: a projected
// volume's tokens and ConfigMap keys, a ConfigMap's keys, or nothing for an
// emptyDir. Directories are world-readable; files belong to uid:gid (when
// set) and only they can read tokens.
func materialise(ctx context.Context, pod *corev1.Pod, name, dir string, uid, gid int64, vols Volumes) (string, error) {
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return "", fmt.Errorf("volume %s is mounted but not declared", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := chown(dir, uid, gid); err != nil {
		return "", err
	}
	switch {
	case vol.EmptyDir != nil:
	case vol.ConfigMap != nil:
		if err := writeConfigMap(ctx, dir, vol.ConfigMap.Name, vol.ConfigMap.Items, uid, gid, vols); err != nil {
			return "", err
		}
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			if err := writeProjected(ctx, dir, name, src, uid, gid, vols); err != nil {
				return "", err
			}
		}
	default:
		return "", fmt.Errorf("volume %s: unsupported volume type", name)
	}
	return dir, nil
}

// writeProjected writes one source of projected volume name into dir: a
// token or a ConfigMap's keys.
func writeProjected(ctx context.Context, dir, name string, src corev1.VolumeProjection, uid, gid int64, vols Volumes) error {
	switch {
	case src.ServiceAccountToken != nil:
		sat := src.ServiceAccountToken
		exp := int64(3600)
		if sat.ExpirationSeconds != nil {
			exp = *sat.ExpirationSeconds
		}
		token, err := vols.Token(ctx, sat.Audience, exp)
		if err != nil {
			return fmt.Errorf("volume %s: requesting a token: %w", name, err)
		}
		return writeFile(filepath.Join(dir, sat.Path), []byte(token), 0o400, uid, gid)
	case src.ConfigMap != nil:
		return writeConfigMap(ctx, dir, src.ConfigMap.Name, src.ConfigMap.Items, uid, gid, vols)
	default:
		return fmt.Errorf("volume %s: unsupported projected source", name)
	}
}

func writeConfigMap(ctx context.Context, dir, name string, items []corev1.KeyToPath, uid, gid int64, vols Volumes) error {
	data, err := vols.ConfigMap(ctx, name)
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s: %w", name, err)
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("ConfigMap %s has no key %s", name, it.Key)
		}
		if err := writeFile(filepath.Join(dir, it.Path), []byte(v), 0o644, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode, uid, gid int64) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return chown(path, uid, gid)
}

func chown(path string, uid, gid int64) error {
	if uid < 0 {
		return nil
	}
	if gid < 0 {
		gid = uid
	}
	if err := os.Chown(path, int(uid), int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// RunInit runs the pod's capstan-init container to completion inside ns,
// with the binary at initPath in place of the image's.
func RunInit(ctx context.Context, pod *corev1.Pod, ns *Netns, initPath, dir string, vols Volumes) error {
	c, err := PrepareContainer(ctx, pod, InitContainerName, dir, vols)
	if err != nil {
		return err
	}
	if len(c.Command) != 1 || c.Command[0] != "capstan-init" {
		return fmt.Errorf("capstan-init's command is %q, want [capstan-init]", c.Command)
	}
	cmd := ns.Command(ctx, initPath, c.Args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("capstan-init %s in %s: %w\n%s", strings.Join(c.Args, " "), ns.Name, err, out)
	}
	return nil
}

// EnvoyCommand is the pod's proxy container as a command inside ns: the
// Envoy at envoyPath, as the container's user (setpriv), with the
// container's expanded args and extra appended.
func EnvoyCommand(ctx context.Context, pod *corev1.Pod, ns *Netns, envoyPath, dir string, vols Volumes, extra ...string) (*Container, []string, error) {
	c, err := PrepareContainer(ctx, pod, meshv1alpha1.ProxyContainerName, dir, vols)
	if err != nil {
		return nil, nil, err
	}
	if len(c.Command) != 1 || c.Command[0] != "envoy" {
		return nil, nil, fmt.Errorf("the proxy's command is %q, want [envoy]", c.Command)
	}
	if c.UID <= 0 {
		return nil, nil, fmt.Errorf("the proxy runs as uid %d, want a non-root user", c.UID)
	}
	gid := c.GID
	if gid < 0 {
		gid = c.UID
	}
	argv := []string{"setpriv", "--reuid=" + strconv.FormatInt(c.UID, 10), "--regid=" + strconv.FormatInt(gid, 10),
		"--clear-groups", envoyPath}
	argv = append(argv, c.Args...)
	argv = append(argv, extra...)
	return c, argv, nil
}
