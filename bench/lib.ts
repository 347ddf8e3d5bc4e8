/**
 * Shared plumbing of the benchmark parts: temp dirs and nats-server processes that are cleaned
 * up at exit, waiting with a deadline, statistics over rounds, and /proc readings of a child.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServerProcess, renderServerConfig } from "../src/demo/nats-server.js";

export const argv = process.argv.slice(2);
export const quick = argv.includes("--quick");
export const asJson = argv.includes("--json");
export const verbose = argv.includes("--verbose");
/** `--flag value` or `--flag=value`. */
export function flag(name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const a = argv[i]!;
  return a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[i + 1];
}
export const log = (s: string) => (asJson ? process.stderr : process.stdout).write(`${s}\n`);

const dirs: string[] = [];
const servers: NatsServerProcess[] = [];
const children = new Set<ChildProcess>();

export async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function server(name: string, render: NatsServerProcess["spec"]["render"]): Promise<NatsServerProcess> {
  const s = new NatsServerProcess({ name, dir: await tmp(`egw-bench-${name}-`), render });
  servers.push(s);
  await s.start();
  return s;
}
export { renderServerConfig };

/** A child process that is killed at cleanup if still running. */
export function child(cmd: string, args: string[], opts: { stdio?: "ignore" | "pipe"; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: opts.stdio === "pipe" ? ["pipe", "pipe", "pipe"] : "ignore", env: opts.env ?? process.env });
  children.add(c);
  c.once("exit", () => children.delete(c));
  return c;
}

/** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
export async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  const t = setTimeout(() => c.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

export async function cleanup(): Promise<void> {
  for (const c of children) c.kill("SIGKILL");
  for (const s of servers) await s.stop().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

export async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median with min–max over rounds: the spread that says how far one figure can be trusted. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}
export function spread(xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), rounds: xs };
}
export function fmt(s: Spread, digits = 0, unit = ""): string {
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)} over ${s.rounds.length})`;
}

/** Percentile of an ascending array. */
export function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** Resident set size of a process in MiB (VmRSS; VmHWM is the peak). */
export async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** utime+stime of a process in clock ticks (USER_HZ = 100 on Linux). */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}
export const TICKS_PER_SEC = 100;

/** % of one core a process used over `ms` (from /proc/<pid>/stat). */
export async function cpuPercent(pid: number, ms: number): Promise<number> {
  const t0 = performance.now();
  const c0 = await cpuTicks(pid);
  await pause(ms);
  const c1 = await cpuTicks(pid);
  return ((c1 - c0) / TICKS_PER_SEC / ((performance.now() - t0) / 1000)) * 100;
}

/** Parses `10m`, `30s`, `500ms` (bench flags only). */
export function ms(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`bench: cannot read duration ${JSON.stringify(text)} (use 500ms, 30s, 10m)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms"];
}
