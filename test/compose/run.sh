#!/usr/bin/env bash
# `npm run test:compose`: the real Dockerfile and docker-compose.yml, run for real on this machine (Linux,
# as root). It installs what is missing (Debian's docker.io and debootstrap; Compose v2 from Debian's
# archive), starts a Docker engine of its own with its data under a temporary folder, builds a local
# Node 24 base image (nothing can be pulled), builds Slipway's images, brings the stack up with
# docker-compose.ci.yml over the shipped file, scales to three workers and runs scenario.ts; then it
# tears everything down, engine included, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
started=$SECONDS
say() { echo "compose: [$((SECONDS - started)) s] $*"; }

if [ "$(id -u)" != 0 ]; then echo "compose: run as root (it starts a Docker engine of its own)" >&2; exit 1; fi

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The engine the package would start as a service is not wanted: this script starts its own.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

work=$(mktemp -d /tmp/slipway-compose-XXXXXX)
export DOCKER_HOST="unix://$work/docker.sock"
project="slipway-ci-$$"
dockerd_pid=
compose=()
teardown() {
  local rc=$?
  set +e
  if [ ${#compose[@]} -gt 0 ]; then
    if [ "$rc" != 0 ]; then "${compose[@]}" ps -a; "${compose[@]}" logs --no-color --tail 80; fi
    "${compose[@]}" down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd_pid" 2>/dev/null
  fi
  # The engine's overlay mounts, if any survived it.
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
  say "torn down (exit $rc)"
  exit "$rc"
}
trap teardown EXIT

# Compose v2 (the shipped file needs it: Compose v1 hands `systempaths=unconfined` to the engine, which
# refuses it). Debian ships it from trixie on; bookworm's docker-compose is v1, so take trixie's binary
# (static but for libc) out of its package from the machine's Debian mirror, into the work folder.
if docker compose version 2>/dev/null | grep -q 'version v\?2'; then
  compose=(docker compose)
elif docker-compose version 2>/dev/null | grep -q 'version v\?2'; then
  compose=(docker-compose)
else
  mirror=$(bash test/compose/debian-mirror.sh)
  mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/compose"
  echo "deb $mirror trixie main" > "$work/apt/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work/compose" && apt-get "${apt_opts[@]}" download -qq docker-compose/trixie)
  dpkg-deb -x "$work"/compose/docker-compose_*.deb "$work/compose/root"
  compose=("$work/compose/root/usr/libexec/docker/cli-plugins/docker-compose")
  say "Compose $("${compose[0]}" version --short) from trixie's docker-compose package"
fi

say "starting a Docker engine (data in $work)"
dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/docker.pid" -H "$DOCKER_HOST" \
  --bridge=none --iptables=false --ip6tables=false > "$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; echo "compose: the engine did not start" >&2; exit 1; }

base=slipway-ci/node:24-bookworm-slim
bash test/compose/base-image.sh "$base" 24
say "base image ready"

# Free loopback ports for what the shipped file puts on fixed ones (everything shares the host's network).
read -r redis_port s3_port api_port site_port < <(node -e '
const net = require("net");
Promise.all([0, 1, 2, 3].map(() => new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); })))
  .then((ports) => console.log(ports.join(" ")));')
secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
env_file="$work/ci.env"
s3_user=slipway
s3_secret=$(secret)
{
  # .env.example with every secret filled in; what CI must change besides is below it.
  sed -e "s/^REDIS_PASSWORD=$/REDIS_PASSWORD=$(secret)/" \
      -e "s/^MINIO_ROOT_USER=.*/MINIO_ROOT_USER=$s3_user/" \
      -e "s/^MINIO_ROOT_PASSWORD=$/MINIO_ROOT_PASSWORD=$s3_secret/" \
      -e "s/^SITES_REDIS_PASSWORD=$/SITES_REDIS_PASSWORD=$(secret)/" \
      -e "s/^SITES_S3_ACCESS_KEY=.*/SITES_S3_ACCESS_KEY=$s3_user/" \
      -e "s/^SITES_S3_SECRET_KEY=$/SITES_S3_SECRET_KEY=$s3_secret/" \
      -e "s/^API_TOKENS=$/API_TOKENS=ci-$(secret)/" \
      -e "s|^SECRETS_KEY=$|SECRETS_KEY=$(head -c 32 /dev/urandom | base64)|" \
      -e "s/^ALLOW_PRIVATE_NETWORKS=.*/ALLOW_PRIVATE_NETWORKS=1/" .env.example
  # The git server the scenario clones from is on loopback, hence ALLOW_PRIVATE_NETWORKS above; the
  # embedded S3 server knows one key pair, so the site server's is the root one (MinIO's readonly
  # user is not what CI proves).
  echo "CI_NODE_IMAGE=$base"
  echo "CI_NPM_REGISTRY=$(npm config get registry)"
  echo "CI_REDIS_PORT=$redis_port"
  echo "CI_S3_PORT=$s3_port"
  echo "CI_API_PORT=$api_port"
  echo "CI_SITE_PORT=$site_port"
} > "$env_file"
compose+=(--project-name "$project" --env-file "$env_file" -f docker-compose.yml -f test/compose/docker-compose.ci.yml)

# The engine's own builder (no BuildKit frontend image to pull).
say "building the images from the Dockerfile"
DOCKER_BUILDKIT=0 "${compose[@]}" build > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
say "images built: $(docker images --format '{{.Repository}} {{.Size}}' | grep -E '^slipway/' | tr '\n' ' ')"

say "docker compose up --scale deploy-service=3"
"${compose[@]}" up --detach --wait --scale deploy-service=3 > "$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
say "the stack is up and healthy: $("${compose[@]}" ps --format '{{.Service}}' | sort | uniq -c | tr -s ' \n' ' ')"

node --import tsx test/compose/scenario.ts "$env_file" "$project"

say "the whole check took $((SECONDS - started)) s"
