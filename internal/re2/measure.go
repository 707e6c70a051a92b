package re2

import (
	"regexp/syntax"
	"slices"
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

// programSize models RE2's program size from Go's program. Both compile
// the same constructs to nearly the same instructions; RE2 then flattens its
// program, and its size counts the flattened instructions. The model
// flattens Go's program the same way: the roots are the start and every
// successor of a consuming instruction (a rune, capture or empty-width
// check), plus every instruction reachable from two roots; each root's list
// holds the consuming instructions and matches reachable through
// alternations, one jump per other root reached, and a class as one
// instruction per byte range (Envoy's RE2 works on bytes). RE2 adds a fail
// instruction and two for unanchored search. The model can count a few
// instructions more than RE2 (RE2 strips a literal prefix after ^ and a
// final $), never fewer for the ASCII patterns checkASCII lets through;
// the real-Envoy test holds it to that.
func programSize(prog *syntax.Prog) int {
	f := newFlattener(prog)
	size := 1 + unanchoredOverhead
	for _, r := range f.sortedRoots() {
		size += f.listSize(r)
	}
	return size
}

type flattener struct {
	prog  *syntax.Prog
	roots map[uint32]bool
	preds map[uint32][]uint32 // predecessors through alternations and no-ops
}

func epsilon(op syntax.InstOp) bool {
	return op == syntax.InstAlt || op == syntax.InstAltMatch || op == syntax.InstNop
}

func epsilonOuts(inst *syntax.Inst) []uint32 {
	if inst.Op == syntax.InstNop {
		return []uint32{inst.Out}
	}
	return []uint32{inst.Out, inst.Arg}
}

func newFlattener(prog *syntax.Prog) *flattener {
	f := &flattener{prog: prog, roots: map[uint32]bool{uint32(prog.Start): true}, preds: map[uint32][]uint32{}}
	for i := range prog.Inst {
		inst := &prog.Inst[i]
		switch {
		case epsilon(inst.Op):
			for _, out := range epsilonOuts(inst) {
				f.preds[out] = append(f.preds[out], uint32(i))
			}
		case inst.Op != syntax.InstMatch && inst.Op != syntax.InstFail:
			f.roots[inst.Out] = true
		}
	}
	for f.markUndominated() {
	}
	return f
}

// markUndominated makes a root of every instruction reached from a root
// through alternations that is also reached from elsewhere; true if any.
func (f *flattener) markUndominated() bool {
	changed := false
	for _, r := range f.sortedRoots() {
		seen := f.closure(r)
		for id := range seen {
			if id == r || f.roots[id] {
				continue
			}
			for _, p := range f.preds[id] {
				if !seen[p] {
					f.roots[id], changed = true, true
					break
				}
			}
		}
	}
	return changed
}

// closure is what r reaches through alternations without entering other roots.
func (f *flattener) closure(r uint32) map[uint32]bool {
	seen := map[uint32]bool{}
	stack := []uint32{r}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] || (id != r && f.roots[id]) {
			continue
		}
		seen[id] = true
		if inst := &f.prog.Inst[id]; epsilon(inst.Op) {
			stack = append(stack, epsilonOuts(inst)...)
		}
	}
	return seen
}

// listSize counts the flattened list of root r.
func (f *flattener) listSize(r uint32) int {
	seen := map[uint32]bool{}
	n := 0
	var walk func(id uint32)
	walk = func(id uint32) {
		if seen[id] {
			return
		}
		seen[id] = true
		inst := &f.prog.Inst[id]
		switch {
		case id != r && f.roots[id]:
			n++ // a jump to the other root's list
		case epsilon(inst.Op):
			if f.altMatch(id) {
				n++ // RE2 keeps this alternation as an instruction of its own
			}
			for _, out := range epsilonOuts(inst) {
				walk(out)
			}
		case inst.Op == syntax.InstRune:
			n += classCost(inst.Rune)
		case inst.Op == syntax.InstRuneAnyNotNL:
			n += 2 // [\x00-\x09] and [\x0b-\xff]
		default:
			n++
		}
	}
	walk(r)
	return n
}

// altMatch reports an alternation between a match and a loop over any byte
// back to it, e.g. a final (?s:.)*, which RE2 compiles to an AltMatch.
func (f *flattener) altMatch(id uint32) bool {
	inst := &f.prog.Inst[id]
	if inst.Op != syntax.InstAlt {
		return false
	}
	loops := func(a, b uint32) bool {
		any, match := &f.prog.Inst[a], &f.prog.Inst[b]
		return any.Op == syntax.InstRuneAny && any.Out == id && match.Op == syntax.InstMatch
	}
	return loops(inst.Out, inst.Arg) || loops(inst.Arg, inst.Out)
}

func (f *flattener) sortedRoots() []uint32 {
	out := make([]uint32, 0, len(f.roots))
	for id := range f.roots {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
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
