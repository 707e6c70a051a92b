// Command capstanctl is the Capstan CLI. Installed as kubectl-capstan on the
// PATH, it is also the kubectl plugin `kubectl capstan`.
package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/capstanmesh/capstan/cli/commands"
)

func main() {
	name := "capstanctl"
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-capstan") {
		name = "kubectl capstan"
	}
	os.Exit(commands.Execute(name, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
