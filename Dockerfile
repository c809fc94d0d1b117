# nacos-server container image.
#
#   docker build -t nacos-rs .
#   docker run -e MODE=standalone -p 8848:8848 -p 9848:9848 nacos-rs
#
# Configured like Nacos's official image (nacos/nacos-server): the same environment variables
# (MODE, NACOS_SERVERS, PREFER_HOST_MODE, SPRING_DATASOURCE_PLATFORM, MYSQL_SERVICE_*,
# NACOS_AUTH_*, EMBEDDED_STORAGE, ...; see README "Container deployment"). Like that image it
# starts in cluster mode unless MODE=standalone. Arguments after the image name are passed to
# the server (-m, -p, -D key=value).

# ---- build ----------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace: cargo needs every member's manifest even to build one package.
COPY . .
RUN cargo build --release --locked -p nacos-server \
 && install -m 0755 target/release/nacos-server /usr/local/bin/nacos-server

# ---- runtime --------------------------------------------------------------------------------
FROM debian:12-slim
# A fixed uid/gid so volume permissions (fsGroup in Kubernetes) can be set to match.
RUN groupadd --system --gid 1000 nacos \
 && useradd --system --uid 1000 --gid nacos --home-dir /home/nacos --shell /usr/sbin/nologin nacos \
 && mkdir -p /home/nacos/conf /home/nacos/data \
 && chown -R nacos:nacos /home/nacos
COPY --from=build /usr/local/bin/nacos-server /usr/local/bin/nacos-server
COPY deploy/docker/healthcheck.sh /usr/local/bin/nacos-healthcheck
COPY --chown=nacos:nacos conf/application.properties conf/cluster.conf.example conf/mysql-schema.sql conf/postgresql-schema.sql /home/nacos/conf/
USER nacos
WORKDIR /home/nacos
# Embedded storage (and Raft's log in an embedded cluster) lives here.
VOLUME ["/home/nacos/data"]
# HTTP, client gRPC (+1000), cluster gRPC (+1001), Raft (-1000).
EXPOSE 8848 9848 9849 7848
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/nacos-healthcheck"]
ENTRYPOINT ["/usr/local/bin/nacos-server", "-Dnacos.home=/home/nacos"]
CMD []
