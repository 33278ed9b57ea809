# syntax=docker/dockerfile:1
# Build stage: a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chatgate ./cmd/chatgate \
 && mkdir -p /out/data

# Widget stage: the Rocket.Chat livechat widget build, fetched and checked
# by the Makefile's `widget` target (pinned version and sha512).
FROM node:20-bookworm AS widget
WORKDIR /src
COPY Makefile ./
RUN make widget WIDGET_DIR=/out/livechat

# Run stage: no shell, no package manager, a non-root user, data on a volume.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chatgate /usr/local/bin/chatgate
# The volume's mount point belongs to the nonroot user (uid 65532) so that a
# fresh named volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=widget /out/livechat /srv/livechat
ENV CHATGATE_ADDR=0.0.0.0:8080 \
    CHATGATE_DATA=/data/chatgate.db \
    CHATGATE_LOG_FORMAT=json \
    CHATGATE_WIDGET_DIR=/srv/livechat
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/chatgate"]
CMD ["serve"]
