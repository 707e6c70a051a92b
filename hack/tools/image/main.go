// Command image assembles Capstan's manager image without a container
// engine: one layer holding the static manager binary at /manager (and the
// CLI at /capstanctl, as the Dockerfile's manager stage) on an empty base, run as the non-root user 65532, written as an OCI image layout
// (and a tarball `docker load` and `crane push` read). Nothing is pulled: the
// binary is static (CGO_ENABLED=0) and the manager needs no other file. The
// layer and config carry fixed timestamps, so the same binary gives the same
// image digest. `make image` runs it; test/image checks its output.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed image settings: the same as the Dockerfile's manager stage.
const (
	entrypoint = "/manager"
	user       = "65532:65532"
	source     = "https://github.com/capstanmesh/capstan"
)

type options struct {
	binary, cli, out, tag, version, arch string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "the static manager binary")
	flag.StringVar(&o.cli, "cli", "", "the static capstanctl binary (optional), at /capstanctl")
	flag.StringVar(&o.out, "out", "", "directory to write the OCI image layout into (replaced); image.tar is written beside it")
	flag.StringVar(&o.tag, "tag", "", "the image reference, e.g. registry/capstan-manager:0.1.0")
	flag.StringVar(&o.version, "version", "", "Capstan's version (label org.opencontainers.image.version)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "the binary's architecture")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.binary == "" || o.out == "" || o.tag == "" || o.version == "" {
		return errors.New("-binary, -out, -tag and -version are required")
	}
	img, err := build(o)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(o.tag)
	if err != nil {
		return fmt.Errorf("parsing -tag: %w", err)
	}
	if err := os.RemoveAll(o.out); err != nil {
		return fmt.Errorf("clearing %s: %w", o.out, err)
	}
	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	ann := map[string]string{"org.opencontainers.image.ref.name": o.tag}
	if err := p.AppendImage(img, layout.WithAnnotations(ann)); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	tarPath := strings.TrimSuffix(o.out, string(filepath.Separator)) + ".tar"
	if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", tarPath, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("hashing the image: %w", err)
	}
	fmt.Printf("%s %s\n%s\n", o.tag, digest, tarPath)
	return nil
}

// build makes the image: the binary's layer on an empty base, and the config.
func build(o options) (v1.Image, error) {
	files := []layerFile{{entrypoint, o.binary}}
	if o.cli != "" {
		files = append(files, layerFile{"/capstanctl", o.cli})
	}
	layer, err := binaryLayer(files)
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.User = user
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "capstan-manager",
		"org.opencontainers.image.description": "Capstan service mesh operator and xDS control plane",
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.version":     o.version,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	return img, nil
}

// layerFile is a binary of the layer: where it goes and where it is read from.
type layerFile struct{ dest, src string }

// binaryLayer is a layer holding the files, root-owned, mode 0755, with a
// fixed modification time.
func binaryLayer(files []layerFile) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.src, err)
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(f.dest, "/"), Mode: 0o755, Size: int64(len(data)),
			ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing the layer: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("writing the layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}
	return layer, nil
}
