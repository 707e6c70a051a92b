package inject

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// overrides are a pod's capstan.dev/ annotations, parsed.
type overrides struct {
	excludeInboundPorts  []int32
	excludeOutboundPorts []int32
	excludeOutboundCIDRs []netip.Prefix
	cpu, memory          *resource.Quantity
	logLevel             string
}

// annotationError names the annotation and the value that is wrong.
type annotationError struct {
	name, value, problem string
}

func (e *annotationError) Error() string {
	return fmt.Sprintf("annotation %s: %q %s", e.name, e.value, e.problem)
}

// parseOverrides reads every annotation Inject honours; it returns all the
// invalid ones, sorted by annotation name.
func parseOverrides(ann map[string]string) (overrides, []error) {
	var ov overrides
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	ov.excludeInboundPorts, err = parsePorts(ann, meshv1alpha1.AnnotationExcludeInboundPorts)
	collect(err)
	ov.excludeOutboundPorts, err = parsePorts(ann, meshv1alpha1.AnnotationExcludeOutboundPorts)
	collect(err)
	ov.excludeOutboundCIDRs, err = parseCIDRs(ann, meshv1alpha1.AnnotationExcludeOutboundIPRanges)
	collect(err)
	ov.cpu, err = parseQuantity(ann, meshv1alpha1.AnnotationProxyCPU)
	collect(err)
	ov.memory, err = parseQuantity(ann, meshv1alpha1.AnnotationProxyMemory)
	collect(err)
	ov.logLevel, err = parseLogLevel(ann, meshv1alpha1.AnnotationProxyLogLevel)
	collect(err)
	return ov, errs
}

// splitList splits a comma-separated annotation, trimming spaces and
// dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parsePorts returns the sorted, de-duplicated ports of a port-list annotation.
func parsePorts(ann map[string]string, name string) ([]int32, error) {
	var ports []int32
	for _, item := range splitList(ann[name]) {
		n, err := strconv.ParseUint(item, 10, 16)
		if err != nil || n == 0 {
			return nil, &annotationError{name, item, "is not a port number"}
		}
		ports = append(ports, int32(n))
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

// parseCIDRs returns the sorted, de-duplicated prefixes of a CIDR-list
// annotation. A bare address means that address alone.
func parseCIDRs(ann map[string]string, name string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(ann[name]) {
		p, err := parseCIDR(item)
		if err != nil {
			return nil, &annotationError{name, item, err.Error()}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out), nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("is not a CIDR")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("is not a CIDR")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("is not a CIDR: host bits are set (did you mean %s?)", p.Masked())
	}
	return p, nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// parseQuantity returns a positive resource quantity, or nil when the annotation is absent.
func parseQuantity(ann map[string]string, name string) (*resource.Quantity, error) {
	v, ok := ann[name]
	if !ok {
		return nil, nil
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(v))
	if err != nil {
		return nil, &annotationError{name, v, "is not a resource quantity"}
	}
	if q.Sign() <= 0 {
		return nil, &annotationError{name, v, "must be a positive quantity"}
	}
	return &q, nil
}

// parseLogLevel returns the annotation's Envoy log level, or "" when absent.
func parseLogLevel(ann map[string]string, name string) (string, error) {
	v, ok := ann[name]
	if !ok {
		return "", nil
	}
	if !slices.Contains(LogLevels, v) {
		return "", &annotationError{name, v, "is not a log level (" + strings.Join(LogLevels, ", ") + ")"}
	}
	return v, nil
}
