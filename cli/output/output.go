// Package output prints capstanctl's results as a table, JSON or YAML: every
// command builds one value with JSON tags that also knows its table.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is an output format of -o.
type Format string

// Formats of -o.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// Formats lists the formats, for help texts.
var Formats = []Format{Table, JSON, YAML}

// ParseFormat reads -o; "" gives def.
func ParseFormat(s string, def Format) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case "":
		return def, nil
	case Table, JSON, YAML:
		return f, nil
	}
	return "", fmt.Errorf("unknown output format %q: want table, json or yaml", s)
}

// Tabular is a result that can print itself as a table.
type Tabular interface {
	WriteTable(w io.Writer) error
}

// Print writes v to w in format f.
func Print(w io.Writer, f Format, v Tabular) error {
	switch f {
	case JSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case YAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		return v.WriteTable(w)
	}
}

// TableWriter writes aligned columns, as kubectl does.
type TableWriter struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the headers.
func NewTable(w io.Writer, headers ...string) *TableWriter {
	t := &TableWriter{tw: tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)}
	t.Row(headers...)
	return t
}

// Row adds a row; tabs and newlines in cells become spaces.
func (t *TableWriter) Row(cells ...string) {
	clean := make([]string, len(cells))
	for i, c := range cells {
		clean[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	_, _ = fmt.Fprintln(t.tw, strings.Join(clean, "\t"))
}

// Flush writes the table out.
func (t *TableWriter) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}
