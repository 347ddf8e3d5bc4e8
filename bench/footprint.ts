/**
 * What importing costs before the first reading: RSS and V8 heap of a fresh `node` after
 * importing one module of dist/ (or a dependency), median of 5 processes, next to a bare one.
 * This is how the CLI's and the daemon's startup imports were found (bench/RESULTS.md).
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { log, median, quick } from "./lib.js";

const SCRIPT = new URL("./children/import-rss.mjs", import.meta.url).pathname;
const dist = (p: string) => new URL(`../dist/${p}`, import.meta.url).href;
/** The bundle's chunk for `run` (scripts/bundle.mjs; its name carries a content hash). */
const bundledRun = () => dist(`bundle/${readdirSync(new URL("../dist/bundle/", import.meta.url)).find((f) => /^run-.*\.js$/.test(f))}`);

/** The modules whose import cost is reported; `cli/main.js` is what every CLI command loads first. */
const MODULES: [string, string][] = [
  ["bare node", "bare"],
  ["cli/main.js (every command, --help)", dist("cli/main.js")],
  ["cli/check.js", dist("cli/check.js")],
  ["cli/run.js (edge-gateway run)", dist("cli/run.js")],
  ["bundle: run (what the bin loads)", bundledRun()],
  ["index.js (the library)", dist("index.js")],
  ["zod", "zod"],
  ["pino", "pino"],
  ["@nats-io/transport-node", "@nats-io/transport-node"],
  ["mqtt", "mqtt"],
  ["prom-client", "prom-client"],
];

function once(spec: string): Promise<{ rssMiB: number; heapMiB: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ["--expose-gc", SCRIPT, spec], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.once("error", reject);
    c.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as { rssMiB: number; heapMiB: number }) : reject(new Error(`import-rss ${spec} exited ${code}`))));
  });
}

export async function footprintBench() {
  const runs = quick ? 1 : 5;
  const out: Record<string, { rssMiB: number; heapMiB: number }> = {};
  for (const [name, spec] of MODULES) {
    const xs = [];
    for (let i = 0; i < runs; i++) xs.push(await once(spec));
    out[name] = { rssMiB: median(xs.map((x) => x.rssMiB)), heapMiB: median(xs.map((x) => x.heapMiB)) };
  }
  const bare = out["bare node"]!.rssMiB;
  log(`import cost (RSS after import and GC, median of ${runs}; bare node ${bare.toFixed(1)} MiB):`);
  for (const [name, v] of Object.entries(out)) log(`  ${name.padEnd(38)} +${(v.rssMiB - bare).toFixed(1)} MiB RSS, heap ${v.heapMiB.toFixed(1)} MiB`);
  return out;
}
