// Command localcluster runs a local kube-apiserver and etcd (from bin/k8s)
// with Capstan's CRDs installed, for `make run` on a machine without a
// cluster. It writes an admin kubeconfig to the path given by -out
// once the API server is ready, and stops both processes on SIGINT or SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/capstanmesh/capstan/test/envtest"
)

func main() {
	out := flag.String("out", "bin/local/kubeconfig", "where to write the admin kubeconfig")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	env, err := envtest.Start()
	if err != nil {
		return err
	}
	if err := writeKubeconfig(env.Kubeconfig, out); err != nil {
		return errors.Join(err, env.Stop())
	}
	fmt.Printf("localcluster: API server at %s, kubeconfig %s\n", env.Config.Host, out)
	<-signals
	fmt.Println("localcluster: stopping")
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
	}
	return env.Stop()
}

// writeKubeconfig copies the kubeconfig to out atomically, so that a reader
// polling for out never sees half a file.
func writeKubeconfig(from, out string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
