#!/usr/bin/env bash
# Installs what the tests and the demo need when it is missing: Debian packages (nats-server,
# mosquitto, socat, systemd-analyze, postgresql) and node_modules. Safe to run again; does nothing when
# everything is there. Uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
# `npm ci` builds onoff's native `epoll` module with node-gyp: it needs a C++ toolchain.
if [ ! -d node_modules ]; then
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
fi
if [ "${1:-}" != "--demo" ]; then
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  command -v socat >/dev/null 2>&1 || need+=(socat)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  # The ingest tests start their own PostgreSQL (initdb + postgres from Debian's package).
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "edge-gateway: installing missing Debian packages: ${need[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "edge-gateway: need root to install ${need[*]}: run 'apt-get install -y ${need[*]}' as root" >&2
      exit 2
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts mosquitto and postgresql as services on install; our tests start their own on free ports.
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "edge-gateway: installing node modules (npm ci)" >&2
  npm ci --no-audit --no-fund
elif [ ! -f dist/cli/main.js ]; then
  npm run build
fi
