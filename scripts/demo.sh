#!/usr/bin/env bash
# `npm run demo [-- --outage 10s]`: installs nats-server (Debian package) and the node modules
# when missing, then runs `edge-gateway demo`: a hub and a leaf nats-server, the daemon with
# simulated sensors, and a live view. Ctrl-C (or q) stops it and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh --demo
exec node bin/edge-gateway.js demo "$@"
