package analyze

import (
	"cmp"
	"slices"
)

// Severity of a finding. Errors make `capstanctl analyze` exit with status 1.
type Severity string

// Severities, most severe first.
const (
	SeverityError   Severity = "Error"
	SeverityWarning Severity = "Warning"
	SeverityInfo    Severity = "Info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// Finding codes; see the package documentation.
const (
	CodeUninjectedPods      = "CAP001"
	CodeStrictBlocksCallers = "CAP002"
	CodeWeightedBypass      = "CAP003"
	CodeWholePoolEjection   = "CAP004"
	CodeUnknownHost         = "CAP005"
	CodeUnknownSubset       = "CAP006"
	CodeEmptySubset         = "CAP007"
	CodeConflictingRoute    = "CAP008"
	CodeGatewayAPIVersion   = "CAP009"
	CodePlaintextRefused    = "CAP010"
	CodePlaintextCallers    = "CAP011"
	CodeMeshBypassShare     = "CAP012"
)

// ObjectRef names an object: "Kind namespace/name", or "Kind name" for a
// cluster-scoped one.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Finding is one problem: Object is the one to look at first, Related the
// others involved (callers, Ingresses, Services, ...).
type Finding struct {
	Code     string      `json:"code"`
	Severity Severity    `json:"severity"`
	Object   ObjectRef   `json:"object"`
	Message  string      `json:"message"`
	Related  []ObjectRef `json:"related,omitempty"`
	// Fix says what to do, with commands or YAML to apply.
	Fix string `json:"fix"`
}

// Namespace is where the finding belongs (its Object's namespace).
func (f Finding) Namespace() string { return f.Object.Namespace }

// compareFindings orders findings by severity, code, then object.
func compareFindings(a, b Finding) int {
	return cmp.Or(cmp.Compare(a.Severity.rank(), b.Severity.rank()), cmp.Compare(a.Code, b.Code),
		cmp.Compare(a.Object.Namespace, b.Object.Namespace), cmp.Compare(a.Object.Kind, b.Object.Kind),
		cmp.Compare(a.Object.Name, b.Object.Name), cmp.Compare(a.Message, b.Message))
}

// Sort orders findings deterministically: errors first, then by code and object.
func Sort(fs []Finding) { slices.SortFunc(fs, compareFindings) }

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == SeverityError })
}

// InNamespace keeps the findings of namespace ns and the cluster-scoped ones.
func InNamespace(fs []Finding, ns string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Namespace() == "" || f.Namespace() == ns {
			out = append(out, f)
		}
	}
	return out
}
