package inject

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

const (
	// defaultConcurrency is Envoy's worker count when neither the Mesh nor a CPU limit sets it.
	defaultConcurrency = 2
	maxConcurrency     = 64
	// startupBudgetSeconds bounds how long the proxy may take to become ready
	// (startup probe, and the hold hook in non-native mode).
	startupBudgetSeconds = 600
)

// proxyContainer is the Envoy sidecar.
func proxyContainer(cfg Config, ov overrides, workload string) (corev1.Container, error) {
	res, err := proxyResources(cfg, ov)
	if err != nil {
		return corev1.Container{}, err
	}
	logLevel := or(ov.logLevel, cfg.ProxyLogLevel)
	c := corev1.Container{
		Name:    meshv1alpha1.ProxyContainerName,
		Image:   cfg.ProxyImage,
		Command: []string{"envoy"},
		Args: []string{
			"--config-yaml", bootstrapJSON(cfg, workload),
			"--log-level", logLevel,
			"--concurrency", itoa(int64(concurrency(cfg.ProxyConcurrency, res))),
			"--disable-hot-restart",
		},
		Ports: []corev1.ContainerPort{{
			Name: PromPortName, ContainerPort: meshv1alpha1.PortStats, Protocol: corev1.ProtocolTCP,
		}},
		Env:             proxyEnv(),
		Resources:       res,
		VolumeMounts:    proxyMounts(),
		StartupProbe:    healthProbe(1, startupBudgetSeconds),
		ReadinessProbe:  healthProbe(15, 4),
		SecurityContext: proxySecurityContext(),
	}
	if cfg.NativeSidecar {
		c.RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
	} else {
		c.Lifecycle = &corev1.Lifecycle{PostStart: holdUntilReady()}
	}
	return c, nil
}

// proxyResources are the Mesh's resources with the pod's request overrides.
// A request above the Mesh's limit is an error naming the annotation.
func proxyResources(cfg Config, ov overrides) (corev1.ResourceRequirements, error) {
	res := *cfg.ProxyResources.DeepCopy()
	for _, o := range []struct {
		name string
		res  corev1.ResourceName
		q    *resource.Quantity
	}{
		{meshv1alpha1.AnnotationProxyCPU, corev1.ResourceCPU, ov.cpu},
		{meshv1alpha1.AnnotationProxyMemory, corev1.ResourceMemory, ov.memory},
	} {
		if o.q == nil {
			continue
		}
		if limit, ok := res.Limits[o.res]; ok && o.q.Cmp(limit) > 0 {
			return res, &annotationError{o.name, o.q.String(),
				"is above the proxy's " + string(o.res) + " limit " + limit.String() + " (Mesh.spec.proxy.resources.limits)"}
		}
		if res.Requests == nil {
			res.Requests = corev1.ResourceList{}
		}
		res.Requests[o.res] = o.q.DeepCopy()
	}
	return res, nil
}

// concurrency is Envoy's worker count: the Mesh's setting when positive, else
// the CPU limit rounded up to whole cores (at least 1), else 2.
func concurrency(fixed int32, res corev1.ResourceRequirements) int32 {
	if fixed > 0 {
		return fixed
	}
	limit, ok := res.Limits[corev1.ResourceCPU]
	if !ok || limit.IsZero() {
		return defaultConcurrency
	}
	cores := int32(math.Ceil(float64(limit.MilliValue()) / 1000))
	return min(max(cores, 1), maxConcurrency)
}

func proxyEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	return []corev1.EnvVar{
		field(EnvPodName, "metadata.name"),
		field(EnvPodNamespace, "metadata.namespace"),
		field(EnvPodIP, "status.podIP"),
		field(EnvServiceAccount, "spec.serviceAccountName"),
		{Name: EnvGRPCRoots, Value: RootCAPath},
		{Name: EnvRootFingerprints, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
			Key:                  meshv1alpha1.RootCAConfigMapFingerprintsKey,
			// An older operator's ConfigMap lacks the key: the proxy
			// starts, and reports roots the server cannot read.
			Optional: ptr.To(true),
		}}},
	}
}

func proxyMounts() []corev1.VolumeMount {
	return []corev1.VolumeMount{
		{Name: VolumeEnvoy, MountPath: EnvoyTmpDir},
		{Name: VolumeRootCA, MountPath: RootCADir, ReadOnly: true},
		{Name: VolumeToken, MountPath: TokenDir, ReadOnly: true},
	}
}

// healthProbe probes the proxy's readiness endpoint on 15021.
func healthProbe(periodSeconds, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   HealthReadyPath,
			Port:   intstr.FromInt32(meshv1alpha1.PortHealth),
			Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   3,
		PeriodSeconds:    periodSeconds,
		SuccessThreshold: 1,
		FailureThreshold: failureThreshold,
	}
}

func proxySecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptrTo[int64](meshv1alpha1.ProxyUID),
		RunAsGroup:               ptrTo[int64](meshv1alpha1.ProxyUID),
		RunAsNonRoot:             ptrTo(true),
		ReadOnlyRootFilesystem:   ptrTo(true),
		AllowPrivilegeEscalation: ptrTo(false),
		Privileged:               ptrTo(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// holdScript polls the proxy's readiness endpoint once a second with bash's
// /dev/tcp (the stock Envoy image has bash but neither curl nor wget), and
// fails after startupBudgetSeconds. It contains no "$(" so that Kubernetes
// leaves it alone.
var holdScript = `for ((i = 0; i < ` + itoa(startupBudgetSeconds) + `; i++)); do ` +
	`if (exec 3<>/dev/tcp/127.0.0.1/` + itoa(meshv1alpha1.PortHealth) + ` && ` +
	`printf 'GET ` + HealthReadyPath + ` HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 && ` +
	`read -r -t 3 status <&3 && [[ "$status" == *" 200 "* ]]) 2>/dev/null; then exit 0; fi; ` +
	`sleep 1; done; echo "capstan-proxy: not ready after ` + itoa(startupBudgetSeconds) + `s" >&2; exit 1`

// holdUntilReady is the non-native mode's postStart hook: the kubelet starts
// a pod's containers in order and waits for each one's postStart hook, so the
// application containers, which come after the proxy, start once it is ready.
func holdUntilReady() *corev1.LifecycleHandler {
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"bash", "-c", holdScript},
	}}
}

// proxyVolumes are the volumes the proxy mounts.
func proxyVolumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: VolumeEnvoy, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: VolumeRootCA, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
			Items:                []corev1.KeyToPath{{Key: RootCAKey, Path: RootCAKey}},
		}}},
		{Name: VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          TokenAudience,
				ExpirationSeconds: ptrTo[int64](TokenExpirationSeconds),
				Path:              "token",
			}}},
		}}},
	}
}

func ptrTo[T any](v T) *T { return &v }
