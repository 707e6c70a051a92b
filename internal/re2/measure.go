package re2

import (
	"regexp/syntax"
	"unicode/utf8"
)

// Runes Go's parser adds to ASCII letters under (?i): ſ folds with s and S,
// the Kelvin sign with k and K. Envoy's RE2 folds ASCII only, which matches
// the same ASCII input.
const (
	longS  = 0x17F
	kelvin = 0x212A
)

// checkASCII refuses literals and classes that select characters above
// \x7F. Envoy's RE2 refuses \x{100} and above and matches Unicode classes
// such as \p{Greek} against nothing, so such a regex would not mean what Go
// (and the user) reads. Classes that take every character above \x7F (., \S,
// [^/]) mean the same to both and are allowed.
func checkASCII(re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r >= utf8.RuneSelf {
				return refuse("matches the character %U; Envoy's RE2 does not read characters above \\x7F as Go does: use ASCII only", r)
			}
		}
	case syntax.OpCharClass:
		if !asciiOrAllAbove(re.Rune, re.Flags&syntax.FoldCase != 0) {
			return refuse("has a character class that selects some characters above \\x7F (a Unicode class such as \\pL, " +
				"or an escape above \\x7F); Envoy's RE2 does not read those as Go does: use ASCII classes only")
		}
	}
	for _, sub := range re.Sub {
		if err := checkASCII(sub); err != nil {
			return err
		}
	}
	return nil
}

// asciiOrAllAbove reports whether a class (sorted, merged range pairs) holds
// no character above \x7F or all of them, leaving aside the runes that case
// folding adds.
func asciiOrAllAbove(ranges []rune, fold bool) bool {
	ignorable := func(r rune) bool { return fold && (r == longS || r == kelvin) }
	none, all := true, true
	next := rune(utf8.RuneSelf) // the first high rune not yet covered
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := max(ranges[i], utf8.RuneSelf), ranges[i+1]
		if hi < lo {
			continue
		}
		if lo != hi || !ignorable(lo) {
			none = false
		}
		if lo > next && !gapIgnorable(next, lo-1, ignorable) {
			all = false
		}
		next = max(next, hi+1)
	}
	if next <= utf8.MaxRune && !gapIgnorable(next, utf8.MaxRune, ignorable) {
		all = false
	}
	return none || all
}

func gapIgnorable(lo, hi rune, ignorable func(rune) bool) bool {
	for r := lo; r <= hi; r++ {
		if !ignorable(r) {
			return false
		}
	}
	return true
}

// lowerBound is a lower bound of the size of Go's program for re, computed
// from the parse tree without expanding repetitions, so that a pattern like
// (a{1000}){1000} is refused before it is compiled. Go's compiler emits at
// least one instruction per literal rune and per class, and a repetition
// x{n,m} as m copies of x (n copies and a loop when unbounded).
func lowerBound(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return 0
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCapture:
		return add(2, lowerBound(re.Sub[0]))
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return add(1, lowerBound(re.Sub[0]))
	case syntax.OpRepeat:
		return mul(max(re.Min, re.Max, 1), lowerBound(re.Sub[0]))
	case syntax.OpConcat, syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			n = add(n, lowerBound(sub))
		}
		return n
	}
	return 1 // a class, any character, an anchor or boundary, no match
}

func add(a, b int) int { return min(a+b, saturated) }

func mul(a, b int) int {
	if a != 0 && b > saturated/a {
		return saturated
	}
	return a * b
}

// programSize models RE2's program size (Envoy's RE2 works on bytes) from
// Go's program: the same instructions, plus RE2's two for unanchored search,
// plus one instruction per extra byte range of a character class. A class
// costs one byte range per Go range that starts at or below \xFF (a range
// reaching above \x7F ends at \xFF), except that a class closed under ASCII
// case folding costs nothing for its upper-case ranges (RE2 matches them
// with its case-folding flag). The model can count a few instructions more
// than RE2 (RE2 strips a literal prefix after ^), never fewer for the ASCII
// patterns checkASCII lets through; the real-Envoy tests hold it to that.
func programSize(prog *syntax.Prog) int {
	size := len(prog.Inst) + unanchoredOverhead
	for i := range prog.Inst {
		inst := &prog.Inst[i]
		switch inst.Op {
		case syntax.InstRune:
			size += classCost(inst.Rune) - 1
		case syntax.InstRuneAnyNotNL:
			size++ // [\x00-\x09] and [\x0b-\xff]
		}
	}
	return size
}

// classCost is the number of RE2 byte ranges of a Go class instruction.
func classCost(ranges []rune) int {
	if len(ranges) == 1 {
		return 1 // a case-folded literal
	}
	folds := foldsASCII(ranges)
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		switch {
		case lo > 0xFF:
		case folds && 'A' <= lo && hi <= 'Z':
		default:
			n++
		}
	}
	return max(n, 1)
}

// foldsASCII reports whether, for every ASCII letter of the class, the other
// case is in the class too.
func foldsASCII(ranges []rune) bool {
	var in [utf8.RuneSelf]bool
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= min(ranges[i+1], utf8.RuneSelf-1); r++ {
			in[r] = true
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		if in[c] != in[c-'a'+'A'] {
			return false
		}
	}
	return true
}
