package translate

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The translator applies api/validation, the rules admission and the status
// reconcilers apply too, and leaves out the part of an object each problem
// is in, so that it programs nothing admission would refuse.

// problemsUnder are the problems whose field is path or lies under it.
func problemsUnder(problems field.ErrorList, path *field.Path) field.ErrorList {
	p := path.String()
	var out field.ErrorList
	for _, e := range problems {
		if e.Field == p || strings.HasPrefix(e.Field, p+".") || strings.HasPrefix(e.Field, p+"[") {
			out = append(out, e)
		}
	}
	return out
}

// problemsAt are the problems whose field is path itself.
func problemsAt(problems field.ErrorList, path *field.Path) field.ErrorList {
	p := path.String()
	var out field.ErrorList
	for _, e := range problems {
		if e.Field == p {
			out = append(out, e)
		}
	}
	return out
}

// reportInvalid records each problem on st as Invalid, naming its field.
func reportInvalid(st *objectStatus, problems field.ErrorList) {
	for _, e := range problems {
		st.invalidf("%s: %s", e.Field, e.Detail)
	}
}
