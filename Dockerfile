# Both services from one file, a target each (build from the repository root):
#   docker build --target upload-service -t slipway/upload-service .
#   docker build --target deploy-service -t slipway/deploy-service .
# No `# syntax=` line: the engine's own Dockerfile frontend builds it, so nothing is pulled but the base.
# The base: Node 24 LTS on Debian bookworm. Any image of that shape will do (Debian with apt, Node and
# npm on the PATH, a `node` user of uid 1000): CI passes one it built itself (test/compose/base-image.sh).
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only (tsx, which runs the TypeScript, is one of them). Manifests first,
# so this layer is rebuilt only when they change; npm ci needs every workspace's package.json.
FROM ${NODE_IMAGE} AS deps
# The npm registry to install from, when not the base image's npm default (a mirror: CI passes what
# `npm config get registry` says on the building machine).
ARG NPM_REGISTRY=
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY upload-service/package.json upload-service/
COPY deploy-service/package.json deploy-service/
COPY cli/package.json cli/
RUN if [ -n "$NPM_REGISTRY" ]; then export npm_config_registry="$NPM_REGISTRY"; fi \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# What both services run on: the dependencies, the shared code, git (clones; builds that ask for
# their commit), openssh-client (clones with a deploy key: ssh, ssh-keygen, ssh-keyscan) and tini
# as PID 1, which passes SIGTERM on to node and reaps orphaned processes.
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app /app
COPY tsconfig.json ./
COPY shared/ shared/
ENTRYPOINT ["/usr/bin/tini", "--"]

# The API, the web page and the sites: runs unprivileged, as the image's `node` user (uid 1000).
FROM runtime AS upload-service
COPY upload-service/ upload-service/
ENV NODE_ENV=production \
    PORT=3000 \
    SITE_PORT=3001
# The API (main.ts) on 3000; the same image runs the site server (site-main.ts) on 3001.
EXPOSE 3000 3001
USER node
CMD ["node", "--import", "tsx", "upload-service/src/main.ts"]

# The build worker. bubblewrap seals each build; prlimit and setpriv (caps, the per-build uid) come
# with util-linux and mount with mount, already in the image; e2fsprogs makes each build's disk
# (mkfs.ext4), used where the container has loop devices (else the disk is watched); iproute2's `ip`
# brings up the loopback of the network namespace the worker makes for each build. It runs as root on purpose (no USER line): it gives each
# build a uid and a cgroup of its own, which an unprivileged process cannot; the repositories' own
# commands never run as root and always run in the sandbox. NODE_ENV stays unset: builds must get
# their devDependencies (vite and the like).
FROM runtime AS deploy-service
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap e2fsprogs iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY deploy-service/ deploy-service/
CMD ["node", "--import", "tsx", "deploy-service/src/main.ts"]
