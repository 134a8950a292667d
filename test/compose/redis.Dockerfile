# CI stands in for redis:7-alpine (no image can be pulled): Debian's redis-server on the local base.
ARG NODE_IMAGE
FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
WORKDIR /data
