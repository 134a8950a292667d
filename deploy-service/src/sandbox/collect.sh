#!/bin/sh
# Slipway's own step after a build, run inside the build's sandbox as the build, with none of the
# build's variables. Paths are resolved here, in the sandbox's view, so a link the build left can only
# lead to what the build itself can see, and only a folder inside the source counts. What the worker
# needs leaves as stdout: one JSON line of facts made only of numbers and letters Slipway chose (no
# name from the build is ever printed into it), then, for `output`, a tar stream.
#
#   collect.sh output SRC APP OUTPUT_DIR|- PLAIN(0|1) N CANDIDATE... M PROBE...
#     facts: {"app":true|false,"chosen":<index of the candidate, -1: none, -2: the app folder>,
#             "requested":"ok"|"missing"|"outside"|null,"probes":"<0 or 1 per probe>"}
#     then a tar of the chosen folder: tar stores links and special files as entries, never follows them.
#   collect.sh keep SRC KEEP
#     moves each node_modules folder under SRC (real folders only, at most 4 deep, names of portable
#     characters only) into KEEP/<n>; facts: {"paths":["<path>", ...]} in that order.
set -u

inside() { case "$1" in "$SRC" | "$SRC"/*) return 0 ;; *) return 1 ;; esac; }
# The real folder $1 leads to, when it is one inside SRC. (The test first: most candidates do not
# exist, and a realpath is a fork and an exec, a couple of milliseconds each.)
folder() {
  [ -d "$1" ] || return 1
  real=$(realpath -e -- "$1" 2>/dev/null) || return 1
  inside "$real" && [ -d "$real" ] && printf '%s' "$real"
}

output() {
  SRC=$1 APP=$2 REQUESTED=$3 PLAIN=$4
  shift 4
  app=$(folder "$SRC/$APP") || { printf '{"app":false}\n'; exit 0; }
  n=$1
  shift
  i=0 chosen=-1 out=''
  while [ "$i" -lt "$n" ]; do
    if [ "$chosen" = -1 ] && [ "$REQUESTED" = - ] && candidate=$(folder "$app/$1"); then chosen=$i out=$candidate; fi
    i=$((i + 1))
    shift
  done
  requested=null
  if [ "$REQUESTED" != - ]; then
    if out=$(folder "$app/$REQUESTED"); then requested='"ok"'
    elif [ -e "$app/$REQUESTED" ]; then requested='"outside"' out=''
    else requested='"missing"' out=''
    fi
  elif [ "$chosen" = -1 ] && [ "$PLAIN" = 1 ] && [ -f "$app/index.html" ] && [ ! -L "$app/index.html" ]; then
    chosen=-2 out=$app
  fi
  m=$1
  shift
  probes=''
  while [ "$m" -gt 0 ]; do
    if folder "$app/$1" >/dev/null; then probes="${probes}1"; else probes="${probes}0"; fi
    m=$((m - 1))
    shift
  done
  printf '{"app":true,"chosen":%s,"requested":%s,"probes":"%s"}\n' "$chosen" "$requested" "$probes"
  [ -n "$out" ] || exit 0
  # Exit 1 is tar's "a file changed as it was read": a warning, the archive is whole.
  tar -c -f - --format=posix --hard-dereference --one-file-system -C "$out" .
  code=$?
  [ "$code" = 1 ] && exit 0
  exit "$code"
}

keep() {
  SRC=$1 KEEP=$2
  cd "$SRC" || exit 2
  n=0
  printf '{"paths":['
  # -prune: never inside a node_modules; -type d: a link is not a folder here, never followed.
  for rel in $(find . -maxdepth 5 \( -name '.?*' -prune \) -o \( -type d -name node_modules -prune -print \) 2>/dev/null | sed 's|^\./||' | grep -E '^[A-Za-z0-9._@/-]+$'); do
    if mv -T -- "$rel" "$KEEP/$n" 2>/dev/null; then
      [ "$n" -gt 0 ] && printf ','
      printf '"%s"' "$rel"
      n=$((n + 1))
    fi
  done
  printf ']}\n'
}

mode=${1:-}
shift
case "$mode" in
  output) output "$@" ;;
  keep) keep "$@" ;;
  *) echo "[slipway] collect: unknown mode $mode" >&2; exit 2 ;;
esac
