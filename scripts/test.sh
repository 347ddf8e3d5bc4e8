#!/usr/bin/env bash
# `npm test`: installs what the tests need when missing, then runs the whole suite against real
# nats-server, mosquitto and socat processes that the tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec npx vitest run "$@"
