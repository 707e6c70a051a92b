package re2

import (
	"errors"
	"strings"
	"testing"
)

// TestProgramSize holds the model to RE2's counts as Envoy 1.40 reports them
// (measured with envoy --mode validate; see envoy_test.go for the live check).
func TestProgramSize(t *testing.T) {
	cases := []struct {
		pattern string
		want    int
	}{
		{"a", 5},
		{"abcdefghij", 14},
		{"[a-z0-9]", 6},
		{"[^/]", 6},
		{".", 6},
		{`\w`, 7},
		{`\d{0,40}`, 84},
		{"[a-z]{0,20}", 44},
		{"(abc){0,5}", 34},
		{"(?i)k", 5},
		{"(?i)[a-z]", 5},
		{"[0-9a-fA-F]{0,10}", 34},
		{`\S{0,15}`, 79},
		{`\s{0,20}`, 84},
		{"(?s).{0,20}", 44},
		{"[a-z0-9]{0,32}", 100}, // exactly the limit
	}
	for _, c := range cases {
		got, err := ProgramSize(c.pattern)
		if err != nil || got != c.want {
			t.Errorf("ProgramSize(%q) = %d, %v; want %d", c.pattern, got, err, c.want)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	cases := []struct {
		pattern string
		want    string // in the message
		size    int    // Error.Size, 0 when refused for another reason
	}{
		{"/items/[a-z0-9]{0,100}", "RE2 program size 311 exceeds the limit of 100", 311},
		{"[a-z0-9]{0,33}", "RE2 program size 103 exceeds the limit of 100", 103},
		{strings.Repeat("[a-z]{1000}", 5), "RE2 program size at least 5002 exceeds the limit of 100", 5002},
		{"(a{1000}){1000}", "invalid repeat count", 0}, // Go's parser bounds nesting
		{strings.Repeat("a", MaxPatternLength+1), "1025 bytes long, above the limit of 1024", 0},
		{"", "empty", 0},
		{"(", "not a valid RE2 regular expression", 0},
		{"é", "non-ASCII character at byte 0", 0},
		{`\x{100}`, "U+0100", 0},
		{`\x{e9}`, "U+00E9", 0},
		{`\pL`, "selects some characters above", 0},
		{`[^\x{100}]`, "selects some characters above", 0},
		{`\p{Greek}`, "selects some characters above", 0},
	}
	for _, c := range cases {
		err := Check(c.pattern)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%.40q) = %v; want an *Error containing %q", c.pattern, err, c.want)
			continue
		}
		if e.Size != c.size || errors.Is(err, ErrTooLarge) != (c.size > 0) {
			t.Errorf("Check(%.40q): Size %d, Is(ErrTooLarge) %v; want %d", c.pattern, e.Size, errors.Is(err, ErrTooLarge), c.size)
		}
	}
}

func TestCheckAccepts(t *testing.T) {
	for _, p := range []string{
		"[a-z0-9]{0,32}", `^/users/[0-9]+$`, "(?i)bearer .*", `[^/]+`, `\S+`, "(?i)[^k]",
		"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", `^/v[12]/(items|orders)/[^/]+/?$`,
	} {
		if err := Check(p); err != nil {
			t.Errorf("Check(%q) = %v, want nil", p, err)
		}
	}
}

// TestCheckIsMemoised checks that a pattern is measured once: a second
// Check of a pattern answers from the memo.
func TestCheckIsMemoised(t *testing.T) {
	p := "[a-z]{0,7}-memo"
	if _, ok := memo.get(p); ok {
		t.Fatal("pattern already in the memo")
	}
	if err := Check(p); err != nil {
		t.Fatal(err)
	}
	if err, ok := memo.get(p); !ok || err != nil {
		t.Errorf("memo after Check: %v, %v; want nil, true", err, ok)
	}
}

func TestMemoIsBounded(t *testing.T) {
	m := &memoTable{m: map[string]error{}}
	for i := range memoCap + 10 {
		m.put(strings.Repeat("a", i%50)+string(rune('a'+i%26))+strings.Repeat("b", i/26), nil)
	}
	if len(m.m) > memoCap {
		t.Errorf("memo holds %d entries, want at most %d", len(m.m), memoCap)
	}
}
