# reel: one static binary on distroless, running as non-root.
#
#   docker build -t reel .
#   docker run -p 8080:8080 -v reel-data:/data reel                  # reel serve
#   docker run reel kube-proxy --policy /etc/reel/policy.hujson ...  # reel kube-proxy
#
# The image is also a drop-in for Tailscale's tsrecorder image: the
# Tailscale Kubernetes operator starts /tsrecorder with no arguments and
# its environment (TS_AUTHKEY_FILE, TS_STATE=kube:<pod>,
# TSRECORDER_HOSTNAME, TSRECORDER_LOGIN_SERVER, TSRECORDER_DST, ...);
# /tsrecorder is reel, which called by that name runs "serve --tailnet".
# See docs/kubernetes.md.

# build compiles reel as a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The tests build exactly this command (cmd/reel TestDockerfile).
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/bin/reel ./cmd/reel
RUN ln -s reel /out/bin/tsrecorder && mkdir -p /out/data/recordings

# The image: the binary (root-owned), /tsrecorder linked to it, and /data
# for the non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bin/ /
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080 8443
ENTRYPOINT ["/reel"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--dst", "/data/recordings"]
