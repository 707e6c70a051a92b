package v1alpha1

// Condition types carried by every mesh kind.
const (
	// ConditionAccepted says whether the object is valid and was taken into the mesh model.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs says whether every host and subset the object names exists.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed says whether the object's config has been sent to proxies.
	ConditionProgrammed = "Programmed"
	// ConditionReady is the Mesh's summary condition.
	ConditionReady = "Ready"
	// ConditionIssuerReady says whether the certificate issuer can sign workload
	// certificates (reasons IssuerReady, IssuerNotReady, RequestDenied, IssuanceFailed).
	ConditionIssuerReady = "IssuerReady"
	// ConditionRestartUninjected is on the Mesh while
	// spec.injection.restartUninjected is true: whether the operator may
	// restart workloads (reasons RestartPermitted, RestartForbidden).
	ConditionRestartUninjected = "RestartUninjected"
	// ConditionSafetyOverride is on an object, with status True, for as long
	// as it was admitted only through an override of a safety rule (reason
	// AggressiveEjectionAllowed); it is removed once the object keeps the rule.
	ConditionSafetyOverride = "SafetyOverride"
)

// Condition reasons.
const (
	// ReasonAccepted: the object is valid.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: a field holds a value that cannot be programmed; the message names it.
	ReasonInvalid = "Invalid"
	// ReasonConflicted: another, older object already claims the same host.
	ReasonConflicted = "Conflicted"
	// ReasonNotDefault: a Mesh other than the singleton "default".
	ReasonNotDefault = "NotDefault"
	// ReasonResolvedRefs: every reference resolves.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonHostNotFound: a referenced host names no known Service.
	ReasonHostNotFound = "HostNotFound"
	// ReasonSubsetNotFound: a referenced subset is not defined by the host's DestinationPolicy.
	ReasonSubsetNotFound = "SubsetNotFound"
	// ReasonPortNotFound: a destination names a port the Service does not have, or names
	// none when the Service has several.
	ReasonPortNotFound = "PortNotFound"
	// ReasonTooManyClusters: the object would take its namespace past
	// Mesh.spec.scoping.maxClustersPerNamespace; the message says what was left out.
	ReasonTooManyClusters = "TooManyClusters"
	// ReasonProgrammed: the config was generated and served.
	ReasonProgrammed = "Programmed"
	// ReasonPending: the config has not been generated yet.
	ReasonPending = "Pending"
	// ReasonRejected: at least one proxy rejected (NACKed) the config.
	ReasonRejected = "Rejected"
	// ReasonTranslationError: the config could not be generated; the message says why.
	ReasonTranslationError = "TranslationError"
	// ReasonReady: the mesh is ready.
	ReasonReady = "Ready"
	// ReasonNotReady: the mesh is not ready; the message says why.
	ReasonNotReady = "NotReady"
	// ReasonIssuerNotReady: the named cert-manager issuer is missing or not ready.
	ReasonIssuerNotReady = "IssuerNotReady"
	// ReasonRequestDenied: a certificate request was denied.
	ReasonRequestDenied = "RequestDenied"
	// ReasonIssuerReady: the issuer signs workload certificates.
	ReasonIssuerReady = "IssuerReady"
	// ReasonIssuanceFailed: issuing a certificate failed for another reason
	// (a timeout, an unusable answer); the message says why.
	ReasonIssuanceFailed = "IssuanceFailed"
	// ReasonRestartPermitted: the operator may patch Deployments, StatefulSets and DaemonSets.
	ReasonRestartPermitted = "RestartPermitted"
	// ReasonRestartForbidden: the operator's ServiceAccount lacks the ClusterRole
	// capstan-restarter; uninjected pods are reported but not restarted.
	ReasonRestartForbidden = "RestartForbidden"
	// ReasonAggressiveEjectionAllowed: the DestinationPolicy's outlier
	// detection can eject the whole pool, admitted because of
	// capstan.dev/allow-aggressive-ejection: "true"; the message names the fields.
	ReasonAggressiveEjectionAllowed = "AggressiveEjectionAllowed"
)
