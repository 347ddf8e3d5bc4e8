/**
 * `npm run build`, second step: bundles the compiled CLI (dist/cli/*.js, from tsc) and the
 * dependencies it loads into dist/bundle/, which bin/edge-gateway.js runs.
 *
 * Why (issue 13, bench/RESULTS.md): node keeps every loaded module's source and its per-module
 * machinery in memory, and resolves and reads each file at start. One bundle instead of ~400
 * files, measured side by side: RSS after loading `run` 71 -> 60 MB, start ~150 ms sooner; at a
 * steady 1k readings/s only ~2 MB less (the heap, not the code, is most of it there). Lazy
 * imports stay lazy: code splitting puts every `import()` (drivers,
 * MQTT, prom-client, the HTTP server, the cloud commands) in its own chunk.
 *
 * Packages with native addons or optional native parts stay external and load from node_modules.
 * Identifiers are not minified, so stack traces keep their function names. The library entry
 * (dist/index.js) is tsc's output, not this bundle.
 */
import { build } from "esbuild";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist/bundle`;

export const external = ["serialport", "@serialport/*", "onoff", "epoll", "modbus-serial", "pg", "pg-native", "better-sqlite3"];

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: "dist/cli/main.js", signals: "dist/cli/signals.js" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external,
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "linked",
  // CommonJS dependencies (pino, mqtt) call require() for node builtins.
  banner: { js: "import{createRequire as __egwRequire}from'node:module';const require=__egwRequire(import.meta.url);" },
  logLevel: "warning",
});
