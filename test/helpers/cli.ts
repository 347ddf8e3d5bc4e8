import { fileURLToPath } from "node:url";
import type { SpawnOptions } from "node:child_process";
import { startProc, type Proc } from "./procs.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const entry = fileURLToPath(new URL("./cli-entry.ts", import.meta.url));

/** Runs `edge-gateway ARGS` from the sources (through tsx), as a separate process. */
export function spawnCli(args: string[], opts: SpawnOptions = {}): Proc {
  return startProc(process.execPath, ["--import", "tsx", entry, ...args], { cwd: root, ...opts });
}

/** Runs the CLI to completion: exit code and output. */
export async function runCli(args: string[], opts: SpawnOptions = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = spawnCli(args, opts);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
