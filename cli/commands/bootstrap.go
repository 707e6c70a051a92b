package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/cli/output"
)

// configArg is Envoy's flag the injector passes the bootstrap with.
const configArg = "--config-yaml"

func (o *Options) printBootstrap(ctx context.Context, ns, name string) error {
	c, err := o.connect()
	if err != nil {
		return err
	}
	pod := &corev1.Pod{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		return fmt.Errorf("reading pod %s/%s: %w", ns, name, err)
	}
	b, err := podBootstrap(pod)
	if err != nil {
		return err
	}
	return o.print(&BootstrapResult{Namespace: ns, Pod: name, Bootstrap: b}, output.Table)
}

// podBootstrap is the bootstrap in the sidecar's arguments, expanded as
// the kubelet expands $(VAR) references from the container's environment.
func podBootstrap(pod *corev1.Pod) (json.RawMessage, error) {
	containers := append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
	i := slices.IndexFunc(containers, func(c corev1.Container) bool { return c.Name == meshv1alpha1.ProxyContainerName })
	if i < 0 {
		return nil, fmt.Errorf("pod %s/%s has no %s container: it is not injected", pod.Namespace, pod.Name, meshv1alpha1.ProxyContainerName)
	}
	proxy := containers[i]
	j := slices.Index(proxy.Args, configArg)
	if j < 0 || j+1 >= len(proxy.Args) {
		return nil, fmt.Errorf("the %s container of pod %s/%s has no %s argument", proxy.Name, pod.Namespace, pod.Name, configArg)
	}
	raw := expandRefs(proxy.Args[j+1], envValues(pod, proxy.Env))
	if !json.Valid([]byte(raw)) {
		return nil, fmt.Errorf("the bootstrap of pod %s/%s is not JSON", pod.Namespace, pod.Name)
	}
	return json.RawMessage(raw), nil
}

// envValues are the variables whose values the pod itself tells: literal
// values and the downward API's pod fields. Others (ConfigMap keys) stay
// unexpanded, as references.
func envValues(pod *corev1.Pod, env []corev1.EnvVar) map[string]string {
	fields := map[string]string{
		"metadata.name": pod.Name, "metadata.namespace": pod.Namespace,
		"status.podIP": pod.Status.PodIP, "spec.serviceAccountName": pod.Spec.ServiceAccountName,
		"spec.nodeName": pod.Spec.NodeName, "metadata.uid": string(pod.UID),
	}
	out := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = expandRefs(e.Value, out)
		case e.ValueFrom.FieldRef != nil:
			if v, ok := fields[e.ValueFrom.FieldRef.FieldPath]; ok {
				out[e.Name] = v
			}
		}
	}
	return out
}

// expandRefs does the kubelet's expansion of container arguments: $(NAME)
// becomes the variable's value when it is known, $$ becomes $, and anything
// else stays as written.
func expandRefs(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
