# shardgate container image.
#   docker build -t shardgate .
#   docker run -v $PWD/myconf:/etc/shardgate:ro -p 3307:3307 -p 9107:9107 shardgate
# (myconf/ holds shardgate.toml; mounting the directory rather than the file lets a replaced file,
# as editors and Kubernetes ConfigMaps write it, reach the container for a config reload.)
# The config must listen on 0.0.0.0 (see deploy/compose/shardgate.toml) and set admin_listen
# to port 9107 for the health check.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shardgate \
    && cp target/release/shardgate /usr/local/bin/shardgate

FROM debian:bookworm-slim
# curl is for the HEALTHCHECK only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 shardgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shardgate \
    && mkdir -p /etc/shardgate
COPY --from=build /usr/local/bin/shardgate /usr/local/bin/shardgate
# Numeric, so Kubernetes can verify runAsNonRoot without looking the name up.
USER 10001:10001
EXPOSE 3307 9107
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:9107/healthz || exit 1
ENTRYPOINT ["shardgate", "--config", "/etc/shardgate/shardgate.toml"]
