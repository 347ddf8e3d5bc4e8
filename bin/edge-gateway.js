#!/usr/bin/env -S node --max-semi-space-size=1 --initial-old-space-size=8
// Thin launcher: the CLI runs from dist/bundle/ (tsc's dist/ bundled with its dependencies by
// scripts/bundle.mjs), built by `npm ci` through the `prepare` script.
//
// The V8 flags size the heap for a small steady daemon (bench/RESULTS.md, issue 13):
// --max-semi-space-size=1 (MiB) keeps the young generation at 3 MiB instead of up to 48, and
// --initial-old-space-size=8 makes the first full GC come at 8 MiB of old space instead of tens,
// after which V8 sizes the old space from what is live. Neither is a limit: a long outage's
// queue grows the heap as before. They apply when the file is executed (systemd's ExecStart,
// the npm bin link); the container's ENTRYPOINT passes them too. `env -S` needs coreutils 8.30+
// (Debian 10+, Raspberry Pi OS).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/bundle/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error("edge-gateway: dist/ is missing. Run `npm ci` (or `npm run build`) in the checkout first.");
  process.exit(2);
}
// `run`: SIGTERM/SIGINT handlers first, before the CLI's modules load (which takes a while on
// a Pi), so a stop during startup is a clean exit 0, not a kill by the signal.
if (process.argv[2] === "run") {
  const { installStopSignals } = await import(new URL("../dist/bundle/signals.js", import.meta.url).href);
  installStopSignals();
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// The command has finished: a handle a library left open (e.g. the socket of a failed connect
// to a port that does not speak NATS) must not keep the process alive.
setTimeout(() => process.exit(code), 500).unref();
