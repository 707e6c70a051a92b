package annotations

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
)

// Dependencies is the parsed value of the capstan.dev/dependencies
// annotation (meshv1alpha1.AnnotationDependencies) of a pod or a namespace:
// the destinations its sidecars get mesh config for besides their own
// namespace's services (docs/scoping.md).
type Dependencies struct {
	// All is true for the entry "*": every service of the mesh.
	All bool
	// Namespaces are the namespaces of "namespace/*" entries, sorted, unique.
	Namespaces []string
	// Hosts are the "name.namespace" of the other entries (an FQDN is
	// shortened to it), sorted, unique.
	Hosts []string
}

// clusterSuffix is what an FQDN adds to name.namespace.
const clusterSuffix = ".svc.cluster.local"

// ParseDependencies reads an annotation value: entries separated by commas,
// each "name.namespace", "name.namespace.svc", "name.namespace.svc.cluster.local",
// "namespace/*" or "*"; spaces around entries and empty entries are ignored.
// It returns the valid entries and one error per invalid entry, each naming
// the annotation and the entry.
func ParseDependencies(value string) (Dependencies, []error) {
	var d Dependencies
	var errs []error
	for _, raw := range strings.Split(value, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		if err := d.add(entry); err != nil {
			errs = append(errs, fmt.Errorf("annotation %s: entry %q: %w", meshv1alpha1.AnnotationDependencies, entry, err))
		}
	}
	slices.Sort(d.Namespaces)
	d.Namespaces = slices.Compact(d.Namespaces)
	slices.Sort(d.Hosts)
	d.Hosts = slices.Compact(d.Hosts)
	return d, errs
}

func (d *Dependencies) add(entry string) error {
	switch {
	case entry == "*":
		d.All = true
		return nil
	case strings.HasSuffix(entry, "/*"):
		ns := strings.TrimSuffix(entry, "/*")
		if err := dnsLabel(ns, "namespace"); err != nil {
			return err
		}
		d.Namespaces = append(d.Namespaces, ns)
		return nil
	}
	host, err := shortHost(entry)
	if err != nil {
		return err
	}
	d.Hosts = append(d.Hosts, host)
	return nil
}

// shortHost turns an entry naming one service into name.namespace.
func shortHost(entry string) (string, error) {
	h := strings.TrimSuffix(strings.TrimSuffix(entry, clusterSuffix), ".svc")
	parts := strings.Split(h, ".")
	if len(parts) != 2 {
		return "", errors.New("want name.namespace, name.namespace.svc, name.namespace" + clusterSuffix + ", namespace/* or *")
	}
	if err := dnsLabel(parts[0], "service name"); err != nil {
		return "", err
	}
	if err := dnsLabel(parts[1], "namespace"); err != nil {
		return "", err
	}
	return h, nil
}

func dnsLabel(s, what string) error {
	if msgs := validation.IsDNS1123Label(s); len(msgs) > 0 {
		return fmt.Errorf("%s %q: %s", what, s, strings.Join(msgs, "; "))
	}
	return nil
}

// Merge is the union of d and o.
func (d Dependencies) Merge(o Dependencies) Dependencies {
	out := Dependencies{
		All:        d.All || o.All,
		Namespaces: slices.Concat(d.Namespaces, o.Namespaces),
		Hosts:      slices.Concat(d.Hosts, o.Hosts),
	}
	slices.Sort(out.Namespaces)
	out.Namespaces = slices.Compact(out.Namespaces)
	slices.Sort(out.Hosts)
	out.Hosts = slices.Compact(out.Hosts)
	return out
}
