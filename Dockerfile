# syntax=docker/dockerfile:1
# Capstan's images. The version comes from the Makefile's VERSION
# (make docker-build passes it as a build argument):
#
#   docker build --build-arg VERSION=0.1.0 --target manager .
#   docker build --build-arg VERSION=0.1.0 --target capstan-init .
#
# manager: the operator and the CLI (/capstanctl, for `kubectl exec`),
# static, on distroless static (no shell), non-root.
# capstan-init: the traffic capture init container: capstan-init and
# iptables with both backends (legacy and nft) on an empty base, no shell.

ARG GO_VERSION=1.26.8
ARG DEBIAN_RELEASE=bookworm

# The Go builder: the same `go build` as `make build`, static.
FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS builder
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cli/ cli/
COPY cmd/ cmd/
COPY config/crd/ config/crd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY pki/ pki/
COPY webhook/ webhook/
COPY xds/ xds/
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    LDFLAGS="-s -w -X main.version=${VERSION} -X github.com/capstanmesh/capstan/cli/commands.Version=${VERSION}"
RUN go build -trimpath -ldflags "${LDFLAGS}" -o /out/manager ./cmd/manager
RUN go build -trimpath -ldflags "${LDFLAGS}" -o /out/capstan-init ./cmd/capstan-init
RUN go build -trimpath -ldflags "${LDFLAGS}" -o /out/capstanctl ./cmd/capstanctl

# iptables (legacy and nft) with its libraries, as a root file system.
FROM debian:${DEBIAN_RELEASE}-slim AS iptables
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
COPY hack/image/iptables-rootfs.sh /iptables-rootfs.sh
RUN /iptables-rootfs.sh /rootfs

FROM scratch AS capstan-init
ARG VERSION=dev
LABEL org.opencontainers.image.title="capstan-init" \
      org.opencontainers.image.description="Capstan's traffic capture init container (iptables legacy and nft)" \
      org.opencontainers.image.source="https://github.com/capstanmesh/capstan" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=iptables /rootfs/ /
COPY --from=builder /out/capstan-init /capstan-init
ENV PATH=/usr/sbin
# The injector runs it as uid 0 with NET_ADMIN and NET_RAW only; the image
# itself defaults to a non-root user.
USER 65532:65532
ENTRYPOINT ["/capstan-init"]

# The operator. Last, so that a plain `docker build .` builds it.
FROM gcr.io/distroless/static-debian12:nonroot AS manager
ARG VERSION=dev
LABEL org.opencontainers.image.title="capstan-manager" \
      org.opencontainers.image.description="Capstan service mesh operator and xDS control plane" \
      org.opencontainers.image.source="https://github.com/capstanmesh/capstan" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/manager /manager
COPY --from=builder /out/capstanctl /capstanctl
USER 65532:65532
ENTRYPOINT ["/manager"]
