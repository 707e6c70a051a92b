// Command bundle renders Capstan's OLM bundle and file-based catalog from
// the install manifest (dist/install.yaml, rendered from config/default), the
// ClusterServiceVersion base (config/manifests/bases) and the samples
// (config/samples). `make bundle` and `make catalog` run it; the output is
// deterministic (sorted keys, no timestamps), so CI's diff check catches a
// stale bundle.
//
//	bundle  -version 0.1.0 -image IMG
//	catalog -version 0.1.0 -bundle-image IMG
//
// The related images besides the manager's are the injector's: capstan-init
// tagged with the version, and the default Envoy.
package main

import (
	"flag"
	"fmt"
	"os"
)

// Fixed names of the package.
const (
	packageName    = "capstan"
	channel        = "stable"
	deploymentName = "capstan-manager"
	webhookService = "capstan-webhook"
	// olmWebhookCertDir is where OLM mounts the webhook serving certificate
	// (tls.crt, tls.key): controller-runtime's default directory.
	olmWebhookCertDir = "/tmp/k8s-webhook-server/serving-certs"
)

type options struct {
	root                      string
	version, image, bundleImg string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bundle bundle|catalog [flags]")
		os.Exit(2)
	}
	var o options
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.StringVar(&o.root, "root", ".", "the repository root")
	fs.StringVar(&o.version, "version", "", "the release (semver, no v)")
	fs.StringVar(&o.image, "image", "", "the manager image")
	fs.StringVar(&o.bundleImg, "bundle-image", "", "the bundle image")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "bundle":
		err = writeBundle(o)
	case "catalog":
		err = writeCatalog(o)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}
