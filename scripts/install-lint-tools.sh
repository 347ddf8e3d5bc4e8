#!/usr/bin/env bash
# Installs the deployment linters used by test/deploy (not project dependencies, so they stay
# out of package.json / package-lock.json): dockerfile-utils and dockerfilelint from the npm
# registry into .tmp/lint-tools; from Debian, docker-compose (1.29: `config` validates a
# compose file without a Docker engine) and shellcheck (scripts/install.sh). hadolint is in
# neither registry. Safe to run again.
# Usage: bash scripts/install-lint-tools.sh   (CI: call it before `npm test`)
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKERFILE_UTILS=0.16.3
DOCKERFILELINT=1.8.0
prefix=.tmp/lint-tools

have() { [ -x "$prefix/node_modules/.bin/$1" ] && grep -q "\"version\": \"$2\"" "$prefix/node_modules/$1/package.json" 2>/dev/null; }
if ! have dockerfile-utils "$DOCKERFILE_UTILS" || ! have dockerfilelint "$DOCKERFILELINT"; then
  echo "edge-gateway: installing dockerfile-utils@$DOCKERFILE_UTILS dockerfilelint@$DOCKERFILELINT into $prefix" >&2
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || echo '{"name":"edge-gateway-lint-tools","private":true}' > "$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
    "dockerfile-utils@$DOCKERFILE_UTILS" "dockerfilelint@$DOCKERFILELINT" >&2
fi

need=()
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "edge-gateway: installing Debian packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
