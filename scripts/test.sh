#!/usr/bin/env bash
# `npm test`: installs what the tests need when missing (nats-server, mosquitto, socat,
# systemd-analyze, node modules, the deployment linters), builds dist/ (the CLI tests run the
# built `bin/edge-gateway.js` too), then runs the whole suite against real nats-server,
# mosquitto and socat processes that the tests start on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/install-lint-tools.sh
npm run build --silent
exec npx vitest run "$@"
