package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PeerMTLSMode is the mTLS mode a workload accepts.
// +kubebuilder:validation:Enum=STRICT;PERMISSIVE;DISABLE;UNSET
type PeerMTLSMode string

// Peer mTLS modes.
const (
	PeerMTLSStrict     PeerMTLSMode = "STRICT"
	PeerMTLSPermissive PeerMTLSMode = "PERMISSIVE"
	PeerMTLSDisable    PeerMTLSMode = "DISABLE"
	PeerMTLSUnset      PeerMTLSMode = "UNSET"
)

// PeerAuthenticationSpec says which mTLS mode the selected workloads accept.
// +kubebuilder:validation:XValidation:rule="!has(self.portLevelMtls) || (has(self.selector) && has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0)",message="portLevelMtls requires a selector with matchLabels",fieldPath=".portLevelMtls"
type PeerAuthenticationSpec struct {
	// Selector picks the workloads in the namespace; empty means the whole namespace.
	// +optional
	Selector *WorkloadSelector `json:"selector,omitempty"`

	// MTLS is the mode for every port of the selected workloads.
	// +kubebuilder:default={}
	// +optional
	MTLS PeerMTLS `json:"mtls,omitempty"`

	// PortLevelMTLS overrides the mode per container port number.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[1-9][0-9]{0,4}$') && int(k) <= 65535)",message="keys must be port numbers between 1 and 65535"
	// +optional
	PortLevelMTLS map[string]PeerMTLS `json:"portLevelMtls,omitempty"`
}

// WorkloadSelector picks pods by labels.
type WorkloadSelector struct {
	// MatchLabels the pods must carry.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PeerMTLS is an mTLS mode.
type PeerMTLS struct {
	// Mode is STRICT, PERMISSIVE, DISABLE, or UNSET (inherit from the namespace or the mesh).
	// +kubebuilder:default=UNSET
	// +optional
	Mode PeerMTLSMode `json:"mode,omitempty"`
}

// PeerAuthenticationStatus is the observed state of a PeerAuthentication.
type PeerAuthenticationStatus struct {
	// Conditions: Accepted, Programmed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Proxies counts the proxies whose config carries this object and those
	// of them that acknowledged its current generation.
	// +optional
	Proxies *ProxyCounts `json:"proxies,omitempty"`
}

// PeerAuthentication sets the mTLS mode of a namespace or of selected workloads.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pa,categories=capstan
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mtls.mode`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].status`
// +kubebuilder:printcolumn:name="Proxies",type=string,JSONPath=`.status.proxies.summary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PeerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec   PeerAuthenticationSpec   `json:"spec,omitempty"`
	Status PeerAuthenticationStatus `json:"status,omitempty"`
}

// PeerAuthenticationList is a list of PeerAuthentication.
// +kubebuilder:object:root=true
type PeerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PeerAuthentication `json:"items"`
}

func init() {
	register(&PeerAuthentication{}, &PeerAuthenticationList{})
}
