package ir

import "testing"

func TestResolveHost(t *testing.T) {
	tests := []struct {
		host, ns, want string
	}{
		{"reviews", "bookinfo", "reviews.bookinfo.svc.cluster.local"},
		{"reviews.other", "bookinfo", "reviews.other.svc.cluster.local"},
		{"reviews.other.svc", "bookinfo", "reviews.other.svc.cluster.local"},
		{"reviews.other.svc.cluster.local", "bookinfo", "reviews.other.svc.cluster.local"},
		// Not a mesh host: returned as written, so that it names no Service.
		{"api.example.com", "bookinfo", "api.example.com"},
		{"reviews.other.svc.cluster", "bookinfo", "reviews.other.svc.cluster"},
	}
	for _, tt := range tests {
		if got := ResolveHost(tt.host, tt.ns); got != tt.want {
			t.Errorf("ResolveHost(%q, %q) = %q, want %q", tt.host, tt.ns, got, tt.want)
		}
	}
}
