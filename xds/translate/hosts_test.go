package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLookupHost(t *testing.T) {
	in := &Inputs{Services: []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "bookinfo"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "data"}},
	}}
	tr := newTranslator(in)
	tr.translateServices()
	tests := []struct {
		host, ns string
		found    string // FQDN of the service found, "" for none
	}{
		{"reviews", "bookinfo", "reviews.bookinfo.svc.cluster.local"},
		{"reviews", "data", ""},
		{"db.data", "bookinfo", "db.data.svc.cluster.local"},
		{"db.data.svc", "bookinfo", "db.data.svc.cluster.local"},
		{"db.data.svc.cluster.local", "elsewhere", "db.data.svc.cluster.local"},
		{"ratings", "bookinfo", ""},
	}
	var got, want []string
	for _, tt := range tests {
		svc, _ := tr.lookupHost(tt.host, tt.ns)
		name := ""
		if svc != nil {
			name = svc.FQDN
		}
		got = append(got, tt.host+"@"+tt.ns+"="+name)
		want = append(want, tt.host+"@"+tt.ns+"="+tt.found)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lookupHost (-want +got):\n%s", diff)
	}
}
