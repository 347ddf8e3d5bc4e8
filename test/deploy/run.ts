/**
 * Running the real deployment tools (bash scripts, systemd-analyze, linters) from tests.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile, readlink, lstat } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (test/deploy/../..). */
export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface RunResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion and collects its output. Resolves, never rejects (a spawn
 * error resolves with code "spawn-error"). The child is killed if it outlives `timeoutMs`.
 */
export function run(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      resolve({ code: "spawn-error", stdout, stderr: stderr + String(e) });
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? "unknown", stdout, stderr });
    });
  });
}

/** `run` with the failing output in the assertion message, for readable test failures. */
export function explain(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/**
 * One line per path under `root`: type, mode, uid:gid, symlink target, and a content hash
 * of regular files. Two equal listings mean nothing observable changed (mtimes excluded).
 */
export async function treeListing(root: string): Promise<string[]> {
  const lines: string[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      const st = await lstat(p);
      const rel = relative(root, p);
      const attrs = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) lines.push(`l ${rel} ${attrs} -> ${await readlink(p)}`);
      else if (st.isDirectory()) {
        lines.push(`d ${rel} ${attrs}`);
        await walk(p);
      } else {
        const hash = createHash("sha256").update(await readFile(p)).digest("hex");
        lines.push(`f ${rel} ${attrs} ${hash}`);
      }
    }
  }
  await walk(root);
  return lines;
}

/**
 * Minimal systemd unit / INI parser: section → key → values (repeated keys accumulate).
 * Comments and blank lines are skipped; no line continuations (our units use none).
 */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      current = new Map();
      sections.set(sec[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !current) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    const list = current.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    current.set(key, list);
  }
  return sections;
}

/** systemd time span (`45s`, `5min`, `1min 30s`, plain seconds) → seconds. */
export function timespanSeconds(span: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 };
  let total = 0;
  for (const m of span.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)) {
    const factor = m[2] ? units[m[2]] : 1;
    if (factor === undefined) throw new Error(`unknown time unit in ${span}`);
    total += Number(m[1]) * factor;
  }
  return total;
}
