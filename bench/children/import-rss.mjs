// RSS and heap after importing one module (then two full GCs), for the footprint part of
// `npm run bench`: `node --expose-gc import-rss.mjs <specifier | bare>` prints one JSON line.
import { setTimeout as pause } from "node:timers/promises";

const spec = process.argv[2];
if (spec !== "bare") await import(spec);
globalThis.gc();
await pause(200);
globalThis.gc();
const m = process.memoryUsage();
process.stdout.write(JSON.stringify({ rssMiB: m.rss / 2 ** 20, heapMiB: m.heapUsed / 2 ** 20 }) + "\n");
