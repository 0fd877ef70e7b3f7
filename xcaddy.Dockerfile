# syntax=docker/dockerfile:1

# A production image of Caddy with the caddy-webhooks plugin, compiled with
# xcaddy from this checkout. Build it from the repository root, which is the
# build context:
#
#   docker build -f xcaddy.Dockerfile -t caddy-webhooks .
#
# Run it with your Caddyfile and named volumes for Caddy's data and config
# directories:
#
#   docker run -d --name caddy -p 80:80 -p 443:443 -p 443:443/udp \
#     -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" \
#     -v caddy_data:/data -v caddy_config:/config caddy-webhooks
#
# The layout follows Caddy's official image: the config at
# /etc/caddy/Caddyfile, the data directory under /data and the config
# directory under /config. RUN --mount needs BuildKit, which is Docker's
# default builder since Docker 23.

# Stage 1 compiles Caddy. It runs on the build machine's own platform
# (BUILDPLATFORM) and cross-compiles for TARGETOS and TARGETARCH, so a
# multi-platform build such as
# `docker buildx build --platform linux/amd64,linux/arm64 ...` needs no CPU
# emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-alpine3.23 AS build

# xcaddy is pinned to the release whose flags and environment variables
# this file uses.
RUN go install github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5

# xcaddy builds the Caddy version named in CADDY_VERSION, and the latest
# release without it. This pin keeps the image on the release that the
# plugin's go.mod requires and its tests run against.
ARG CADDY_VERSION=v2.11.9

# xcaddy runs `go get` for the plugin too, although --with below replaces
# it with the checkout, and Go uses the checkout only when looking up the
# plugin's versions ends in "not found". With Go's default GOPROXY, a module
# path that the proxy does not serve falls through to `direct`, which needs
# git and access to the repository. "|off" ends any failed lookup in "not
# found" instead, so the build needs neither.
ARG GOPROXY=https://proxy.golang.org|off

# The whole checkout goes to /src, so the image contains the plugin exactly
# as checked out, uncommitted changes included.
WORKDIR /src
COPY . .

# `--with <module>=/src` makes xcaddy replace the plugin module with the
# checkout in /src instead of downloading it. To build a released version
# instead, delete the COPY above and change the plugin argument to
#   --with github.com/caddy-webhooks/caddy-webhooks@<version>
# xcaddy disables cgo unless CGO_ENABLED=1, so the binary is static and
# runs on any Linux base image. The cache mounts keep downloaded modules
# and compiled packages between builds.
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
    xcaddy build --with github.com/caddy-webhooks/caddy-webhooks=/src --output /usr/bin/caddy

# Stage 2 is the runtime image: Alpine, as in Caddy's official image, for a
# small base that still has a shell for `docker exec`.
FROM alpine:3.23

# ca-certificates verifies the certificates of https webhook receivers and
# ACME servers. mailcap installs /etc/mime.types, from which Go's mime
# package, and so Caddy's file_server, looks up content types.
RUN apk add --no-cache ca-certificates mailcap

# Caddy runs as UID 10001, a fixed number so that Kubernetes' runAsNonRoot
# check passes and host directories can be given to it. The directories it
# writes belong to that UID and to group 0 with the owner's permissions,
# so a platform that runs the image under another UID in group 0, as
# OpenShift does, can write them too.
RUN addgroup -S -g 10001 caddy \
    && adduser -S -D -H -u 10001 -G caddy -h /data -s /sbin/nologin caddy \
    && mkdir -p /config/caddy /data/caddy /etc/caddy/examples /srv \
    && chown -R 10001:0 /config /data \
    && chmod -R g=u /config /data

COPY --from=build /usr/bin/caddy /usr/bin/caddy

# The capability lets the non-root user bind ports 80 and 443. A container
# that drops all capabilities must add NET_BIND_SERVICE back, because the
# kernel refuses to start a binary whose file capability is outside the
# container's bounding set. libcap provides setcap and is removed again.
RUN apk add --no-cache --virtual .setcap libcap \
    && setcap cap_net_bind_service=+ep /usr/bin/caddy \
    && apk del .setcap

# The demo config of the repository, as a starting point for your own:
#   docker run --rm caddy-webhooks cat /etc/caddy/examples/demo.Caddyfile
# It binds its sites to 127.0.0.1 and [::1], so they are not reachable
# through published ports as it is.
COPY testdata/demo.Caddyfile /etc/caddy/examples/demo.Caddyfile

# Caddy keeps its data directory in $XDG_DATA_HOME/caddy and its config
# directory (the autosaved config) in $XDG_CONFIG_HOME/caddy. The data
# directory holds the TLS certificates and the embedded JetStream store of
# the webhooks app (/data/caddy/webhooks/nats by default), which holds every
# event not yet delivered. Keep /data on a volume, or a new container starts
# with an empty store and the pending events of the old one are lost.
ENV XDG_CONFIG_HOME=/config
ENV XDG_DATA_HOME=/data
VOLUME ["/data", "/config"]

# HTTP, HTTPS and HTTP/3. The admin API listens on localhost:2019 inside
# the container, so `docker exec caddy caddy webhooks destinations` reaches
# it and nothing outside does.
EXPOSE 80 443 443/udp

WORKDIR /srv
USER 10001
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
