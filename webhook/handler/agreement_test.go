package handler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation/validationtest"
)

// webhookPaths are the validating webhooks' paths by kind.
var webhookPaths = map[string]string{
	"MeshRoute":          PathValidateMeshRoute,
	"DestinationPolicy":  PathValidateDestinationPolicy,
	"PeerAuthentication": PathValidatePeerAuthentication,
	"Mesh":               PathValidateMesh,
}

// TestAdmissionAgreesWithTheRules runs every shared case (validationtest)
// through the validating webhook registered for its kind, as an admission
// request: a case the rules refuse is denied as Invalid naming the same
// fields in the same order, the others are allowed. The status reconcilers'
// and the translator's tests check the same cases.
func TestAdmissionAgreesWithTheRules(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := meshv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	webhooks := validatingWebhooks(scheme, nil) // no case names a subset: the reader is not used
	for _, c := range validationtest.Cases() {
		t.Run(c.Kind()+"/"+c.Name, func(t *testing.T) {
			wh := webhooks[webhookPaths[c.Kind()]]
			resp := wh.Handle(context.Background(), admissionRequest(t, admissionv1.Create, c, nil))
			if resp.Allowed == c.Refused() {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, !c.Refused(), resp.Result)
			}
			if !c.Refused() {
				return
			}
			if got := causeFields(resp.Result); strings.Join(got, ",") != strings.Join(c.Fields, ",") {
				t.Errorf("refusal names %q, want %q", got, c.Fields)
			}
			// An update that keeps the stored problems is admitted, with a warning per problem.
			upd := wh.Handle(context.Background(), admissionRequest(t, admissionv1.Update, c, c.Object))
			if !upd.Allowed || len(upd.Warnings) != len(c.Fields) {
				t.Errorf("update keeping the problems: allowed %v, warnings %q; want allowed with %d", upd.Allowed, upd.Warnings, len(c.Fields))
			}
		})
	}
}

// admissionRequest is the admission request for c's object; old is the
// stored object of an update.
func admissionRequest(t *testing.T, op admissionv1.Operation, c validationtest.Case, old runtime.Object) admission.Request {
	t.Helper()
	gvk := meshv1alpha1.GroupVersion.WithKind(c.Kind())
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: op, Namespace: validationtest.Namespace,
		Kind:   metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Object: runtime.RawExtension{Raw: rawObject(t, c.Object, c.Kind())},
	}}
	if old != nil {
		req.OldObject = runtime.RawExtension{Raw: rawObject(t, old, c.Kind())}
	}
	return req
}

func rawObject(t *testing.T, obj runtime.Object, kind string) []byte {
	t.Helper()
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind(kind))
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// causeFields are the fields an Invalid status names.
func causeFields(st *metav1.Status) []string {
	if st == nil || st.Details == nil {
		return nil
	}
	var out []string
	for _, c := range st.Details.Causes {
		out = append(out, c.Field)
	}
	return out
}
