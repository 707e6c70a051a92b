package ir

import (
	"errors"
	"fmt"
	"slices"
)

// Validate checks the invariants generation relies on.
func (m *Mesh) Validate() error {
	var errs []error
	if m.TrustDomain == "" {
		errs = append(errs, errors.New("trustDomain is empty"))
	}
	for _, s := range m.Services {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.FQDN, err))
		}
	}
	for _, p := range m.Proxies {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("proxy %s: %w", p.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks a service.
func (s *Service) Validate() error {
	var errs []error
	if s.FQDN == "" {
		errs = append(errs, errors.New("fqdn is empty"))
	}
	for _, p := range s.Ports {
		if p.Port == 0 || p.Port > 65535 {
			errs = append(errs, fmt.Errorf("port %d out of range", p.Port))
		}
	}
	for _, r := range s.Routes {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Validate checks a route.
func (r *HTTPRoute) Validate() error {
	if r.Redirect != nil {
		if len(r.Destinations) > 0 {
			return errors.New("redirect and destinations are mutually exclusive")
		}
		return nil
	}
	if len(r.Destinations) == 0 {
		return errors.New("no destinations")
	}
	if len(r.Destinations) == 1 {
		return nil
	}
	var sum uint32
	for _, d := range r.Destinations {
		sum += d.Weight
	}
	if sum != 100 {
		return fmt.Errorf("weights sum to %d, not 100", sum)
	}
	return nil
}

// Validate checks a proxy.
func (p *Proxy) Validate() error {
	if p.ID == "" {
		return errors.New("id is empty")
	}
	for _, in := range p.Inbound {
		switch in.MTLS {
		case MTLSStrict, MTLSPermissive, MTLSDisable:
		default:
			return fmt.Errorf("inbound port %d: unknown mTLS mode %q", in.Port, in.MTLS)
		}
	}
	if p.Scope != nil && (!slices.IsSorted(p.Scope.Namespaces) || !slices.IsSorted(p.Scope.Hosts)) {
		return errors.New("scope: namespaces and hosts must be sorted")
	}
	return nil
}
