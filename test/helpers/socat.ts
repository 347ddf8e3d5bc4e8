/**
 * Pseudo-terminal pairs from socat, the test stand-in for a serial cable: bytes written to one
 * end come out of the other, both ends are real kernel ttys that `serialport` opens like a USB
 * adapter. Stopping socat makes both ends vanish (like unplugging); starting it again recreates
 * them at the same paths (new /dev/pts numbers behind the same links, like a /dev/serial/by-id link).
 */
import { lstat, realpath } from "node:fs/promises";
import { join } from "node:path";
import { startProc, stopProc, tempDir, type Proc } from "./procs.js";
import { waitFor } from "./wait.js";

export interface PtyPair {
  /** The driver's end (a symlink to a /dev/pts device). */
  readonly a: string;
  /** The device's end. */
  readonly b: string;
  /** Kills socat and waits until both links are gone (an unplug). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts socat again on the same link paths and waits for both (a replug). */
  start(): Promise<void>;
}

const pairs = new Set<PtyPair>();

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    await realpath(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a socat pty pair whose links live in a fresh temp dir (removed by `cleanupTempDirs`).
 * With `{start: false}` only the paths are chosen (a device plugged in later: call `start()`).
 */
export async function startPtyPair(opts: { start?: boolean } = {}): Promise<PtyPair> {
  const dir = await tempDir("egw-pty-");
  const a = join(dir, "ttyA");
  const b = join(dir, "ttyB");
  let proc: Proc | undefined;
  const pair: PtyPair = {
    a,
    b,
    async start() {
      if (proc) return;
      proc = startProc("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
      const p = proc;
      await waitFor(async () => (await exists(a)) && (await exists(b)) && /starting data transfer loop/.test(p.stderr()), {
        timeout: 15_000,
        what: `socat pty links ${a} and ${b}`,
      });
    },
    async stop() {
      const p = proc;
      if (!p) return;
      proc = undefined;
      await stopProc(p);
      await waitFor(async () => !(await exists(a)) && !(await exists(b)), { timeout: 10_000, what: "socat links removed" });
    },
  };
  pairs.add(pair);
  if (opts.start !== false) await pair.start();
  return pair;
}

/** Stops every pair started here; call in afterEach/afterAll. */
export async function stopPtyPairs(): Promise<void> {
  await Promise.all([...pairs].map((p) => p.stop()));
  pairs.clear();
}
