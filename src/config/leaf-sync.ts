/**
 * When the leaf's JetStream file store forces its writes to disk (`sync_interval` in
 * `jetstream {}`). JetStream acknowledges a publish before it fsyncs; the store syncs on its
 * own schedule (2 min by default on servers that have the setting), so a power cut can lose
 * acknowledged readings the kernel had not written back yet. `sync_interval` first shipped in
 * nats-server 2.10.0 (nats-io/nats-server#4483); 2.9.x rejects the field ("unknown field").
 * See docs/deploy.md, "Power cuts".
 */
import { execFile } from "node:child_process";
import { GatewayError } from "../errors.js";

/** First nats-server release that accepts `sync_interval`. */
export const SYNC_INTERVAL_SINCE = "2.10.0";

/**
 * `--sync` as given: `auto` (the default: `always` where the installed server supports it,
 * nothing where it does not), `default` (never set it: the server's own schedule),
 * `always` (fsync every write), or a Go duration such as `1s`, `500ms`, `2m`.
 */
export type SyncChoice = "auto" | "default" | "always" | `${number}${string}`;

const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** Parses `--sync`; throws EGW_USAGE naming the flag and the accepted values. */
export function parseSyncChoice(value: string | undefined): SyncChoice {
  const v = (value ?? "auto").trim();
  if (v === "auto" || v === "default" || v === "always" || GO_DURATION.test(v)) return v as SyncChoice;
  throw new GatewayError("EGW_USAGE", `--sync ${JSON.stringify(v)}: use always, a duration like 1s, 500ms or 2m, default (the server's own schedule) or auto`);
}

/** `2.9.10` from `nats-server: v2.9.10` (the output of `nats-server --version`), else undefined. */
export function parseNatsServerVersion(text: string): string | undefined {
  return /\bv?(\d+\.\d+\.\d+)\b/.exec(text)?.[1];
}

/** Whether nats-server `version` (x.y.z) accepts `sync_interval`. */
export function supportsSyncInterval(version: string): boolean {
  const [a = 0, b = 0, c = 0] = version.split(".").map(Number);
  const [x, y, z] = SYNC_INTERVAL_SINCE.split(".").map(Number) as [number, number, number];
  return a !== x ? a > x : b !== y ? b > y : c >= z;
}

const CANDIDATES = ["nats-server", "/usr/sbin/nats-server", "/usr/local/sbin/nats-server", "/usr/local/bin/nats-server"];

/**
 * The version of the installed nats-server (`nats-server --version`, searched on PATH and in
 * the sbin/bin directories Debian and manual installs use), or undefined when none runs.
 * Resolves, never rejects.
 */
export async function detectNatsServerVersion(candidates: string[] = CANDIDATES): Promise<string | undefined> {
  for (const bin of candidates) {
    const out = await new Promise<string | undefined>((resolve) => {
      execFile(bin, ["--version"], { timeout: 5000 }, (err, stdout, stderr) => resolve(err ? undefined : `${stdout}${stderr}`));
    });
    const v = out === undefined ? undefined : parseNatsServerVersion(out);
    if (v) return v;
  }
  return undefined;
}

export interface SyncDecision {
  /** The `sync_interval` value to write, or undefined to leave the field out. */
  value?: string;
  /** One line for the config's comments (and the CLI's stderr): what was chosen and why. */
  note: string;
}

/**
 * Turns `--sync` and the detected server version into what the leaf config gets. Never sets
 * `sync_interval` for a server known to reject it: asking for it there throws EGW_USAGE with
 * the fix. With no server found, an explicit value is written (the leaf may run elsewhere,
 * e.g. in a container) and `auto` writes nothing.
 */
export function decideSync(choice: SyncChoice, version: string | undefined): SyncDecision {
  if (choice === "default") return { note: "sync_interval not set (--sync default): the server syncs on its own schedule" };
  const supported = version === undefined ? undefined : supportsSyncInterval(version);
  if (choice === "auto") {
    if (supported) return { value: "always", note: `sync_interval: always (nats-server ${version} supports it; --sync to choose)` };
    if (version) return { note: `sync_interval not set: nats-server ${version} does not support it (${SYNC_INTERVAL_SINCE}+); a power cut can lose acknowledged readings` };
    return { note: "sync_interval not set: no nats-server found to check that it supports it (pass --sync always or a duration for a server 2.10+)" };
  }
  if (supported === false) {
    throw new GatewayError(
      "EGW_USAGE",
      `--sync ${choice}: the installed nats-server ${version} rejects sync_interval (it needs ${SYNC_INTERVAL_SINCE} or newer): upgrade nats-server, or use --sync default`,
    );
  }
  return {
    value: choice,
    note: version ? `sync_interval: ${choice} (--sync; nats-server ${version})` : `sync_interval: ${choice} (--sync; no nats-server found here to check: it needs ${SYNC_INTERVAL_SINCE}+)`,
  };
}
