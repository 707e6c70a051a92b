// Package size is a lint fixture: hack/lint-selftest.sh expects golangci-lint
// (with the repository's .golangci.yml) to report each function marked
// "want" and nothing else. The package is under testdata/, so ./... skips it.
package size

// want funlen: 52 lines in its body, one over the ceiling of 51.
func TooLong() []int {
	return []int{
		0,
		1,
		2,
		3,
		4,
		5,
		6,
		7,
		8,
		9,
		10,
		11,
		12,
		13,
		14,
		15,
		16,
		17,
		18,
		19,
		20,
		21,
		22,
		23,
		24,
		25,
		26,
		27,
		28,
		29,
		30,
		31,
		32,
		33,
		34,
		35,
		36,
		37,
		38,
		39,
		40,
		41,
		42,
		43,
		44,
		45,
		46,
		47,
		48,
		49,
	}
}

// Not reported: 51 lines in its body, at the ceiling.
func AtLengthCeiling() []int {
	return []int{
		0,
		1,
		2,
		3,
		4,
		5,
		6,
		7,
		8,
		9,
		10,
		11,
		12,
		13,
		14,
		15,
		16,
		17,
		18,
		19,
		20,
		21,
		22,
		23,
		24,
		25,
		26,
		27,
		28,
		29,
		30,
		31,
		32,
		33,
		34,
		35,
		36,
		37,
		38,
		39,
		40,
		41,
		42,
		43,
		44,
		45,
		46,
		47,
		48,
	}
}

// want funlen: 38 statements, one over the ceiling of 37.
func TooManyStatements() int {
	x := 0
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	x++
	return x
}

// want gocognit: cognitive complexity 28 (nested ifs), over 21.
func TooCognitive(a, b, c, d, e, f, g bool) int {
	if a {
		if b {
			if c {
				if d {
					if e {
						if f {
							if g {
								return 1
							}
						}
					}
				}
			}
		}
	}
	return 0
}

// want gocyclo: cyclomatic complexity 19 (a flat switch), over 18.
func TooCyclomatic(n int) string {
	switch n {
	case 0:
		return "0"
	case 1:
		return "1"
	case 2:
		return "2"
	case 3:
		return "3"
	case 4:
		return "4"
	case 5:
		return "5"
	case 6:
		return "6"
	case 7:
		return "7"
	case 8:
		return "8"
	case 9:
		return "9"
	case 10:
		return "10"
	case 11:
		return "11"
	case 12:
		return "12"
	case 13:
		return "13"
	case 14:
		return "14"
	case 15:
		return "15"
	case 16:
		return "16"
	case 17:
		return "17"
	}
	return ""
}
