/**
 * `npm run test:arm64 -- --bench` (scripts/test-arm64.sh prepares qemu and the arm64 Node, then
 * runs this): the built CLI on this machine's x86 Node next to the same CLI on the official
 * arm64 Node 22 under qemu-user, interleaved, as ratios (emulated / native):
 *
 * 1. Cold start: wall time of `edge-gateway check --config FILE` (process start → exit),
 *    and of a bare `node -e 0` for the runtime's own share.
 * 2. Memory: RSS of `edge-gateway run` (10 simulated sensors × 10/s into a local nats-server)
 *    after a warm-up. Under qemu-user the process also holds the emulator and its translated
 *    code, so the ratio says what emulation costs, not what a Pi would use.
 *
 * Emulation says nothing about a real Pi's speed; the figures only tell a slow start under qemu
 * from a hang, and size CI timeouts.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsServerProcess, renderServerConfig } from "../src/demo/nats-server.js";

const QEMU = process.env.EGW_QEMU;
const NODE_ARM64 = process.env.EGW_ARM64_NODE;
if (!QEMU || !NODE_ARM64) {
  console.error("run through `npm run test:arm64 -- --bench` (sets EGW_QEMU and EGW_ARM64_NODE)");
  process.exit(2);
}
const CLI = new URL("../bin/edge-gateway.js", import.meta.url).pathname;
/** Cold-start rounds (ROUNDS=0: memory only). */
const ROUNDS = Number(process.env.ROUNDS ?? 3);

type Runtime = { name: string; cmd: string; pre: string[] };
const x86: Runtime = { name: "x86 (native)", cmd: process.execPath, pre: [] };
const arm64: Runtime = { name: "arm64 (qemu)", cmd: QEMU, pre: [NODE_ARM64] };

const dirs: string[] = [];
const tmp = async (p: string) => {
  const d = await mkdtemp(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

function timed(rt: Runtime, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(rt.cmd, [...rt.pre, ...args], { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${rt.name} ${args.join(" ")} exited ${code}`))));
  });
}

async function until(probe: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function rss(rt: Runtime, url: string, stream: string): Promise<number> {
  const state = await tmp("egw-bench-arm64-");
  const file = join(state, "gateway.yaml");
  const sensors = Array.from({ length: 10 }, (_, i) => ({ id: `s-${i}`, type: "temperature", driver: "simulated", interval: "100ms", unit: "Cel" }));
  await writeFile(file, JSON.stringify({ device: { id: "arm-pi", region: "eu-west" }, nats: { servers: [url] }, remoteConfig: false, http: false, state, log: { level: "warn" }, buffer: { stream, maxBytes: "64MiB" }, sensors }));
  const child = spawn(rt.cmd, [...rt.pre, CLI, "run", "--config", file], { stdio: "ignore" });
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const count = async () => (await jsm.streams.info(stream).catch(() => undefined))?.state.messages ?? 0;
    // Under qemu on a loaded 2-core machine a start can take minutes.
    await until(async () => (await count()) > 0, 600_000, `${rt.name} daemon to publish`);
    // Warm-up: 10 s of publishing at 100 readings/s after the first reading.
    const first = Date.now();
    await until(() => Date.now() - first > 10_000, 60_000, "warm-up");
    const status = await readFile(`/proc/${child.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    // Both runs' streams take `sensors.>`: the next one cannot be created while this one exists.
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const dir = await tmp("egw-bench-arm64-cfg-");
  const cfg = join(dir, "gateway.yaml");
  await writeFile(cfg, "device: { id: arm-pi, region: eu-west }\nremoteConfig: false\nsensors:\n  - { id: t1, type: temperature, driver: simulated, interval: 1s }\n");

  const rows: { what: string; x86: number[]; arm: number[] }[] = [
    { what: "`node -e 0` (ms)", x86: [], arm: [] },
    { what: "`edge-gateway check` (ms)", x86: [], arm: [] },
  ];
  for (let i = 0; i < ROUNDS; i++) {
    rows[0]!.x86.push(await timed(x86, ["-e", "0"]));
    rows[0]!.arm.push(await timed(arm64, ["-e", "0"]));
    rows[1]!.x86.push(await timed(x86, [CLI, "check", "--config", cfg]));
    rows[1]!.arm.push(await timed(arm64, [CLI, "check", "--config", cfg]));
    console.error(`round ${i + 1}: ${rows.map((r) => `${r.what} x86 ${r.x86.at(-1)!.toFixed(0)} arm64 ${r.arm.at(-1)!.toFixed(0)}`).join("; ")}`);
  }
  const server = new NatsServerProcess({ name: "bench-arm64", dir: await tmp("egw-bench-arm64-nats-"), render: renderServerConfig({ name: "bench-arm64" }) });
  await server.start();
  const mem = { what: "`edge-gateway run` RSS after 10 s (MiB)", x86: [] as number[], arm: [] as number[] };
  try {
    mem.x86.push(await rss(x86, server.url, "RSS_X86"));
    mem.arm.push(await rss(arm64, server.url, "RSS_ARM"));
  } finally {
    await server.stop();
  }
  rows.push(mem);
  console.log(`| measure | x86 native (median of ${ROUNDS}) | arm64 under qemu | ratio |`);
  console.log("|---|---|---|---|");
  for (const r of rows) {
    if (r.x86.length === 0) continue; // ROUNDS=0: memory only
    const a = median(r.x86);
    const b = median(r.arm);
    console.log(`| ${r.what} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(1)}× |`);
  }
  console.log(`\nrounds: ${JSON.stringify(rows.map((r) => ({ what: r.what, x86: r.x86.map(Math.round), arm: r.arm.map(Math.round) })))}`);
}

try {
  await main();
} finally {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
