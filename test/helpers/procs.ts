import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./wait.js";

/** A spawned child whose output is collected, and that is killed by `cleanup()`. */
export interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

// Last line of defence: a test worker that exits — normally, or ended by the runner with
// SIGTERM, on which Node does not fire "exit" — never leaves children behind.
const killLive = () => {
  for (const c of live) c.kill("SIGKILL");
};
process.once("exit", killLive);
process.once("SIGTERM", () => {
  killLive();
  process.exit(143);
});

export function startProc(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  live.add(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", (e) => {
      live.delete(child);
      err += String(e);
      resolve("spawn-error");
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(t);
}

/** A temp dir removed by `cleanupTempDirs()` (call it in afterAll/afterEach). */
export async function tempDir(prefix = "egw-test-"): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export async function cleanupTempDirs(): Promise<void> {
  await Promise.all([...dirs].map((d) => rm(d, { recursive: true, force: true })));
  dirs.clear();
}

/** Kills every process started through startProc that is still alive. */
export async function killAll(): Promise<void> {
  const waits = [...live].map((c) => new Promise<void>((r) => { c.once("exit", () => r()); c.kill("SIGKILL"); }));
  await Promise.all(waits);
}

/** Waits until `text` (string or regex) appears in the process's stdout or stderr. */
export function waitForOutput(p: Proc, text: string | RegExp, timeout = 10_000): Promise<RegExpMatchArray | true> {
  return waitFor(
    () => {
      const all = p.stdout() + p.stderr();
      if (typeof text === "string") return all.includes(text) || undefined;
      return all.match(text) ?? undefined;
    },
    { timeout, what: `output ${String(text)}` },
  );
}
