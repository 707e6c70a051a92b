// Package re2 holds Capstan's one rule for regular expressions: the rule
// Envoy applies when it loads them. Envoy compiles every regex with RE2 and
// refuses a program larger than its runtime limit
// re2.max_program_size.error_level (which the injected bootstrap sets to
// MaxProgramSize). Capstan measures each regex before it reaches Envoy, with
// a model of RE2's program size built on Go's regexp/syntax, and refuses what
// Envoy would refuse, so that one object's regex can never make every proxy
// NACK a shared route configuration.
//
// The check is cheap: the pattern's length is bounded before it is parsed, and
// a lower bound of the program size, taken from the parse tree, is checked
// before anything is compiled. Results are memoised, so a regex shared by many
// proxies is compiled once.
//
// The package is pure Go (no Envoy types) so that the API's validation, the
// admission webhook, the translator and the generator all import it.
package re2

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"unicode/utf8"
)

const (
	// MaxProgramSize is the largest RE2 program Capstan accepts, and the value
	// of Envoy's runtime key re2.max_program_size.error_level (and warn_level)
	// in the injected bootstrap. 100 is Envoy's own default, so proxies
	// injected before the key was set apply the same limit.
	MaxProgramSize = 100

	// MaxPatternLength bounds a pattern in bytes before it is parsed (and
	// is the CRD's maxLength of match values).
	MaxPatternLength = 1024

	// MaxTotalBytes bounds the bytes of all regular expressions of one object.
	MaxTotalBytes = 8192

	// unanchoredOverhead is what RE2 adds to a program for unanchored search.
	unanchoredOverhead = 2

	// compileBudget is the largest lower bound of a program that is compiled
	// to measure it exactly (a few hundred microseconds); above it a pattern
	// is refused on its lower bound alone.
	compileBudget = 4096

	// saturated caps the lower bound so that nested repetitions cannot overflow.
	saturated = 1 << 30
)

// RuntimeKeys are the Envoy runtime keys that must hold MaxProgramSize.
var RuntimeKeys = []string{"re2.max_program_size.error_level", "re2.max_program_size.warn_level"}

// Error says why a pattern is refused. Size is the measured program size
// when the pattern was refused for its size (a lower bound when AtLeast).
type Error struct {
	Size    int
	AtLeast bool
	msg     string
}

func (e *Error) Error() string { return e.msg }

// ErrTooLarge matches (errors.Is) an Error for a program above MaxProgramSize.
var ErrTooLarge = errors.New("RE2 program too large")

// Is reports a size refusal as ErrTooLarge.
func (e *Error) Is(target error) bool { return target == ErrTooLarge && e.Size > 0 }

func refuse(format string, args ...any) error { return &Error{msg: fmt.Sprintf(format, args...)} }

func tooLarge(size int, atLeast bool) error {
	what := fmt.Sprintf("%d", size)
	if atLeast {
		what = "at least " + what
	}
	return &Error{Size: size, AtLeast: atLeast, msg: fmt.Sprintf(
		"RE2 program size %s exceeds the limit of %d (Envoy's re2.max_program_size.error_level); "+
			"use a simpler regular expression (fewer or smaller repetitions, or a Prefix match)", what, MaxProgramSize)}
}

// Check reports whether Envoy accepts pattern: nil, or an *Error saying why
// not. Results are memoised.
func Check(pattern string) error {
	if err, ok := memo.get(pattern); ok {
		return err
	}
	_, err := ProgramSize(pattern)
	memo.put(pattern, err)
	return err
}

// ProgramSize measures pattern as Envoy's RE2 does (an upper bound of RE2's
// own count, equal to it for the common shapes), or refuses it.
func ProgramSize(pattern string) (int, error) {
	re, err := parse(pattern)
	if err != nil {
		return 0, err
	}
	if low := lowerBound(re) + unanchoredOverhead; low > compileBudget {
		return 0, tooLarge(low, true)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, refuse("not a valid RE2 regular expression: %v", err)
	}
	size := programSize(prog)
	if size > MaxProgramSize {
		return size, tooLarge(size, false)
	}
	return size, nil
}

// parse bounds the length, refuses non-ASCII patterns and parses with the
// flags of regexp.Compile.
func parse(pattern string) (*syntax.Regexp, error) {
	switch {
	case pattern == "":
		return nil, refuse("an empty regular expression is not allowed")
	case len(pattern) > MaxPatternLength:
		return nil, refuse("is %d bytes long, above the limit of %d", len(pattern), MaxPatternLength)
	}
	for i := 0; i < len(pattern); i++ {
		if pattern[i] >= utf8.RuneSelf {
			return nil, refuse("contains a non-ASCII character at byte %d; Envoy's RE2 reads a pattern byte by byte, "+
				"not as UTF-8: use ASCII only", i)
		}
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, refuse("not a valid RE2 regular expression: %v", err)
	}
	if err := checkASCII(re); err != nil {
		return nil, err
	}
	return re, nil
}
