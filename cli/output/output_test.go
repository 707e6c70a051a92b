package output

import (
	"bytes"
	"io"
	"testing"
)

type rows [][]string

func (r rows) WriteTable(w io.Writer) error {
	t := NewTable(w, "A", "LONGER")
	for _, row := range r {
		t.Row(row...)
	}
	return t.Flush()
}

func TestPrint(t *testing.T) {
	v := rows{{"x\ty", "multi\nline"}}
	for format, want := range map[Format]string{
		Table: "A     LONGER\nx y   multi line\n",
		JSON:  "[\n  [\n    \"x\\ty\",\n    \"multi\\nline\"\n  ]\n]\n",
		YAML:  "- - \"x\\ty\"\n  - |-\n    multi\n    line\n",
	} {
		var b bytes.Buffer
		if err := Print(&b, format, v); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%s: got %q, want %q", format, b.String(), want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("", YAML); f != YAML || err != nil {
		t.Errorf(`ParseFormat("") = %q, %v; want the default`, f, err)
	}
	if f, err := ParseFormat("JSON", Table); f != JSON || err != nil {
		t.Errorf(`ParseFormat("JSON") = %q, %v`, f, err)
	}
	if _, err := ParseFormat("wide", Table); err == nil {
		t.Error(`ParseFormat("wide") accepted`)
	}
}
