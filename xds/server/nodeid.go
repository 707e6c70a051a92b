package server

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NodeType is the first field of a node ID: which kind of xDS client it is.
type NodeType string

// Node types.
const (
	// NodeSidecar is an injected Envoy sidecar.
	NodeSidecar NodeType = "sidecar"
	// NodeGRPC is a proxyless gRPC client.
	NodeGRPC NodeType = "grpc"
)

const nodeIDSeparator = "~"

// NodeID is a parsed xDS node ID of the form
// <type>~<podIP>~<pod>.<namespace>~<namespace>.<domain>,
// for example sidecar~10.0.0.7~web-0.shop~shop.svc.cluster.local.
type NodeID struct {
	Type      NodeType
	IP        netip.Addr
	Pod       string
	Namespace string
	// Domain is the DNS suffix after the namespace, such as svc.cluster.local.
	Domain string
}

// String formats the node ID; ParseNodeID(id.String()) returns id.
func (n NodeID) String() string {
	return strings.Join([]string{
		string(n.Type),
		n.IP.String(),
		n.Pod + "." + n.Namespace,
		n.Namespace + "." + n.Domain,
	}, nodeIDSeparator)
}

// ParseNodeID parses and validates a node ID.
func ParseNodeID(id string) (NodeID, error) {
	fields := strings.Split(id, nodeIDSeparator)
	if len(fields) != 4 {
		return NodeID{}, fmt.Errorf("node ID %q: want 4 %q-separated fields, got %d", id, nodeIDSeparator, len(fields))
	}
	n, err := parseNodeFields(fields)
	if err != nil {
		return NodeID{}, fmt.Errorf("node ID %q: %w", id, err)
	}
	return n, nil
}

func parseNodeFields(fields []string) (NodeID, error) {
	typ, err := parseNodeType(fields[0])
	if err != nil {
		return NodeID{}, err
	}
	ip, err := parsePodIP(fields[1])
	if err != nil {
		return NodeID{}, err
	}
	namespace, domain, err := parseNamespaceDomain(fields[3])
	if err != nil {
		return NodeID{}, err
	}
	pod, err := parsePodName(fields[2], namespace)
	if err != nil {
		return NodeID{}, err
	}
	return NodeID{Type: typ, IP: ip, Pod: pod, Namespace: namespace, Domain: domain}, nil
}

func parseNodeType(s string) (NodeType, error) {
	switch t := NodeType(s); t {
	case NodeSidecar, NodeGRPC:
		return t, nil
	default:
		return "", fmt.Errorf("unknown node type %q (want %q or %q)", s, NodeSidecar, NodeGRPC)
	}
}

func parsePodIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("pod IP: %w", err)
	}
	if ip.Zone() != "" || ip.String() != s {
		return netip.Addr{}, fmt.Errorf("pod IP %q is not in canonical form", s)
	}
	return ip, nil
}

// parseNamespaceDomain splits "<namespace>.<domain>".
func parseNamespaceDomain(s string) (namespace, domain string, err error) {
	namespace, domain, ok := strings.Cut(s, ".")
	if !ok || domain == "" {
		return "", "", fmt.Errorf("%q: want <namespace>.<domain>", s)
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return "", "", fmt.Errorf("namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(domain); len(errs) > 0 {
		return "", "", fmt.Errorf("domain %q: %s", domain, strings.Join(errs, "; "))
	}
	return namespace, domain, nil
}

// parsePodName takes the pod name out of "<pod>.<namespace>".
func parsePodName(s, namespace string) (string, error) {
	pod, ok := strings.CutSuffix(s, "."+namespace)
	if !ok || pod == "" {
		return "", fmt.Errorf("%q: want <pod>.%s", s, namespace)
	}
	if errs := validation.IsDNS1123Subdomain(pod); len(errs) > 0 {
		return "", fmt.Errorf("pod name %q: %s", pod, strings.Join(errs, "; "))
	}
	return pod, nil
}
