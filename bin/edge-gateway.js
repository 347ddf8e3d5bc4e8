#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1
// Thin launcher: the CLI runs from dist/bundle/ (tsc's dist/ bundled with its dependencies by
// scripts/bundle.mjs), built by `npm ci` through the `prepare` script.
//
// The heap is sized for a small steady daemon (bench/RESULTS.md, issue 13): with
// --max-semi-space-size=1 (MiB) the young generation stays at 3 MiB instead of growing to 48,
// and --heap-growing-percent=50 lets the old generation grow by half its live size between full
// GCs instead of V8's default factor (up to 4x on a machine with much memory). Neither is a
// limit: a long outage's queue grows the heap as before. The semi-space flag is in the shebang
// (it applies when the file is executed: systemd's ExecStart, the npm bin link; the container's
// ENTRYPOINT passes it too; `env -S` needs coreutils 8.30+, Debian 10+ / Raspberry Pi OS). The
// growing factor is set here, at run time: a node whose V8 no longer knows the flag prints
// "unrecognized flag" and runs on, where an unknown flag on the command line stops it.
//
// MALLOC_ARENA_MAX=1 (also in the shebang, read by glibc when node starts): one malloc arena
// for all of node's threads instead of one per thread that allocates (V8's compiler and GC
// threads, libuv's pool). At 1k readings/s: 2.0 MiB less RSS, no CPU measurable (issue 13).
// musl ignores it. To run with another value, start `node bin/edge-gateway.js` yourself.
import { setFlagsFromString } from "node:v8";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

setFlagsFromString("--heap-growing-percent=50");

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
