package pki

import (
	"strings"
	"testing"
)

func TestSpiffeIDRoundTrip(t *testing.T) {
	for _, id := range []Identity{
		{"cluster.local", "default", "default"},
		{"example.org", "shop", "web"},
		{"my_td-1.example", "a-b", "sa.with.dots"},
	} {
		s := SpiffeID(id.TrustDomain, id.Namespace, id.ServiceAccount)
		if s != id.String() {
			t.Errorf("SpiffeID %q != String %q", s, id.String())
		}
		got, err := ParseSpiffeID(s)
		if err != nil {
			t.Errorf("ParseSpiffeID(%q): %v", s, err)
			continue
		}
		if got != id {
			t.Errorf("ParseSpiffeID(%q) = %+v, want %+v", s, got, id)
		}
	}
	if got := SpiffeID("cluster.local", "ns1", "sa1"); got != "spiffe://cluster.local/ns/ns1/sa/sa1" {
		t.Errorf("SpiffeID = %q", got)
	}
}

func TestParseSpiffeIDInvalid(t *testing.T) {
	for _, s := range []string{
		"",
		"spiffe://",
		"spiffe:///ns/a/sa/b",               // empty trust domain
		"SPIFFE://td/ns/a/sa/b",             // scheme case
		"https://td/ns/a/sa/b",              // scheme
		"spiffe://TD/ns/a/sa/b",             // upper-case trust domain
		"spiffe://td:8080/ns/a/sa/b",        // port
		"spiffe://user@td/ns/a/sa/b",        // userinfo
		"spiffe://td",                       // no path
		"spiffe://td/",                      // empty path segment
		"spiffe://td/ns/a/sa/b/",            // trailing slash
		"spiffe://td/ns//sa/b",              // empty segment
		"spiffe://td/ns/./sa/b",             // dot segment
		"spiffe://td/ns/../sa/b",            // dot-dot segment
		"spiffe://td/ns/a/sa/b?x=1",         // query
		"spiffe://td/ns/a/sa/b#f",           // fragment
		"spiffe://td/ns/a%20b/sa/b",         // percent-encoding
		"spiffe://td/ns/a/sa",               // short
		"spiffe://td/ns/a/sa/b/c",           // long
		"spiffe://td/namespace/a/sa/b",      // wrong keyword
		"spiffe://td/ns/a/serviceaccount/b", // wrong keyword
		"spiffe://td/ns/A/sa/b",             // namespace not DNS-1123
		"spiffe://td/ns/-a/sa/b",            // namespace leading dash
		"spiffe://td/ns/a/sa/B",             // SA not DNS-1123
		"spiffe://td/ns/a/sa/b..c",          // SA empty label
		"spiffe://td/ns/" + strings.Repeat("a", 64) + "/sa/b", // namespace too long
		"spiffe://" + strings.Repeat("a", 256) + "/ns/a/sa/b", // trust domain too long
		"spiffe://td/ns/a/sa/" + strings.Repeat("b", 2048),    // too long overall
	} {
		if id, err := ParseSpiffeID(s); err == nil {
			t.Errorf("ParseSpiffeID(%q) = %+v, want error", s, id)
		}
	}
}

func TestIdentityValidate(t *testing.T) {
	if err := (Identity{"cluster.local", "default", "default"}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []Identity{
		{},
		{"", "a", "b"},
		{"td", "", "b"},
		{"td", "a", ""},
		{"td/x", "a", "b"},
		{"td", "a/b", "c"},
		{"td", "a", "b/c"},
	} {
		if err := id.Validate(); err == nil {
			t.Errorf("%+v: Validate() = nil, want error", id)
		}
	}
}
