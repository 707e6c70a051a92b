// Package image checks Capstan's images without a container engine: it
// parses the Dockerfile (stages and their instructions), runs the
// capstan-init root file system the Dockerfile assembles in a chroot, and
// reads the OCI image layout `make image` writes.
package image

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
}

// Stage is one FROM and the instructions up to the next.
type Stage struct {
	Base, Name   string
	Instructions []Instruction
}

// Dockerfile is a parsed Dockerfile: the global ARGs before the first FROM,
// and the stages in order.
type Dockerfile struct {
	GlobalArgs []string
	Stages     []*Stage
}

// ParseDockerfile reads path: comments and blank lines dropped, lines ending
// in a backslash joined.
func ParseDockerfile(path string) (*Dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	defer func() { _ = f.Close() }()
	var d Dockerfile
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		if err := d.add(cur.String()); err != nil {
			return nil, err
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	return &d, nil
}

func (d *Dockerfile) add(line string) error {
	cmd, args, _ := strings.Cut(line, " ")
	in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
	switch {
	case in.Cmd == "FROM":
		f := strings.Fields(in.Args)
		s := &Stage{Base: f[0]}
		if len(f) == 3 && strings.EqualFold(f[1], "AS") {
			s.Name = f[2]
		}
		d.Stages = append(d.Stages, s)
	case len(d.Stages) == 0 && in.Cmd == "ARG":
		d.GlobalArgs = append(d.GlobalArgs, in.Args)
	case len(d.Stages) == 0:
		return fmt.Errorf("%s before the first FROM", in.Cmd)
	default:
		s := d.Stages[len(d.Stages)-1]
		s.Instructions = append(s.Instructions, in)
	}
	return nil
}

// Stage returns the stage named name, or nil.
func (d *Dockerfile) Stage(name string) *Stage {
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// All returns the arguments of every instruction cmd in the stage.
func (s *Stage) All(cmd string) []string {
	var out []string
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}
