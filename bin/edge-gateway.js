#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the `prepare` script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error("edge-gateway: dist/ is missing. Run `npm ci` (or `npm run build`) in the checkout first.");
  process.exit(2);
}
// `run`: SIGTERM/SIGINT handlers first, before the CLI's modules load (which takes a while on
// a Pi), so a stop during startup is a clean exit 0, not a kill by the signal.
if (process.argv[2] === "run") {
  const { installStopSignals } = await import(new URL("../dist/cli/signals.js", import.meta.url).href);
  installStopSignals();
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command has finished: a handle a library left open (e.g. the socket of a failed connect
// to a port that does not speak NATS) must not keep the process alive.
setTimeout(() => process.exit(code), 500).unref();
