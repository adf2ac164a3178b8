# Build: a static binary with the web client embedded.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/consult .

# Run: no shell, no package manager, non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/consult /consult
# HTTP (web client, /ws, /api), ICE media on one UDP port, TURN/STUN.
EXPOSE 8080/tcp 7882/udp 3478/udp 3478/tcp
ENV CONSULT_ADDR=:8080 CONSULT_ICE_UDP_PORT=7882 CONSULT_LOG_JSON=true
USER nonroot:nonroot
ENTRYPOINT ["/consult"]
