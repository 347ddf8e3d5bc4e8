#!/usr/bin/env bash
# `npm test`: installs what the tests need when missing (nats-server, mosquitto, socat,
# systemd-analyze, node modules, the deployment linters), then runs the whole suite (whose
# global setup builds dist/: some tests run the built `bin/edge-gateway.js`) against real nats-server,
# mosquitto and socat processes that the tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/install-lint-tools.sh
exec npx vitest run "$@"
