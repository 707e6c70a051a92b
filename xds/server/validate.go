package server

import (
	"errors"
	"fmt"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// validator is implemented by every generated Envoy message (protoc-gen-validate).
type validator interface {
	ValidateAll() error
}

// validateResource checks one resource: a message of the type URL, with a
// name, that passes ValidateAll. internTable.typeVersions checks the type URL
// and that names are unique within the type.
func validateResource(typeURL string, r types.Resource) (string, error) {
	if r == nil || !r.ProtoReflect().IsValid() {
		return "", errors.New("nil resource")
	}
	if got := resourcev3.APITypePrefix + string(r.ProtoReflect().Descriptor().FullName()); got != typeURL {
		return "", fmt.Errorf("message is a %s", got)
	}
	name := cachev3.GetResourceName(r)
	if name == "" {
		return "", errors.New("resource has no name")
	}
	v, ok := r.(validator)
	if !ok {
		return name, fmt.Errorf("%T has no ValidateAll method", r)
	}
	if err := v.ValidateAll(); err != nil {
		return name, fmt.Errorf("validation failed: %w", err)
	}
	return name, nil
}

// consistencyCheck selects how a snapshot's cross references are checked.
type consistencyCheck int

const (
	// checkSnapshot runs go-control-plane's Snapshot.Consistent().
	checkSnapshot consistencyCheck = iota
	// checkProxyless also follows RDS references of API listeners.
	checkProxyless
	// checkNone skips the reference check; ValidateAll still runs.
	checkNone
)

// sameReferences reports whether next's cross references are prev's, so
// that a consistency check that passed for prev passes for next: every type
// but endpoints and route configurations (the referenced types) is
// unchanged, and those two have the same names.
func sameReferences(prev, next configVersions) bool {
	if prev == nil || len(prev) != len(next) {
		return false
	}
	for typeURL, tv := range next {
		old, ok := prev[typeURL]
		switch {
		case !ok:
			return false
		case old.version == tv.version:
		case typeURL == resourcev3.EndpointType || typeURL == resourcev3.RouteType:
			if !sameKeys(old.resources, tv.resources) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// sameKeys reports whether two maps have the same keys.
func sameKeys[V any](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			return false
		}
	}
	return true
}

func checkConsistency(snap *cachev3.Snapshot, check consistencyCheck) error {
	switch check {
	case checkNone:
		return nil
	case checkProxyless:
		return proxylessConsistent(snap)
	case checkSnapshot:
		return snap.Consistent()
	default:
		return fmt.Errorf("unknown consistency check %d", check)
	}
}

// proxylessConsistent is Snapshot.Consistent() for proxyless gRPC clients:
// their listeners are API listeners whose inline HTTP connection manager
// names a route configuration, which Consistent() does not look at. The set
// of route configurations (endpoints) must equal the set referenced by the
// listeners (EDS clusters).
func proxylessConsistent(snap *cachev3.Snapshot) error {
	refs := cachev3.GetAllResourceReferences(snap.Resources)
	if err := addAPIListenerRoutes(snap, refs); err != nil {
		return err
	}
	var errs []error
	for _, typeURL := range []string{resourcev3.EndpointType, resourcev3.RouteType} {
		errs = append(errs, sameNames(typeURL, refs[typeURL], snap.GetResources(typeURL)))
	}
	return errors.Join(errs...)
}

func addAPIListenerRoutes(snap *cachev3.Snapshot, refs map[string]map[string]bool) error {
	for name, r := range snap.GetResources(resourcev3.ListenerType) {
		hcm, err := apiListenerHCM(r)
		if err != nil {
			return fmt.Errorf("listener %q: %w", name, err)
		}
		route := hcm.GetRds().GetRouteConfigName()
		if route == "" {
			continue
		}
		if refs[resourcev3.RouteType] == nil {
			refs[resourcev3.RouteType] = map[string]bool{}
		}
		refs[resourcev3.RouteType][route] = true
	}
	return nil
}

// apiListenerHCM returns the HTTP connection manager of an API listener, or
// nil when the listener is not one.
func apiListenerHCM(r types.Resource) (*hcmv3.HttpConnectionManager, error) {
	l, ok := r.(*listenerv3.Listener)
	if !ok || l.GetApiListener().GetApiListener() == nil {
		return nil, nil
	}
	return unmarshalHCM(l.GetApiListener().GetApiListener())
}

func unmarshalHCM(a *anypb.Any) (*hcmv3.HttpConnectionManager, error) {
	hcm := &hcmv3.HttpConnectionManager{}
	if !a.MessageIs(hcm) {
		return nil, nil
	}
	if err := a.UnmarshalTo(hcm); err != nil {
		return nil, fmt.Errorf("unmarshalling API listener: %w", err)
	}
	return hcm, nil
}

func sameNames(typeURL string, refs map[string]bool, items map[string]types.Resource) error {
	var missing, unreferenced []string
	for name := range refs {
		if _, ok := items[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range items {
		if !refs[name] {
			unreferenced = append(unreferenced, name)
		}
	}
	if len(missing) == 0 && len(unreferenced) == 0 {
		return nil
	}
	slices.Sort(missing)
	slices.Sort(unreferenced)
	return fmt.Errorf("inconsistent %s: referenced but missing %q, present but unreferenced %q", typeURL, missing, unreferenced)
}
