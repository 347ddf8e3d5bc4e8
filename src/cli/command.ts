import { parseArgs, type ParseArgsConfig } from "node:util";
import { SUBJECT_TOKEN } from "../config/tokens.js";
import { parseDuration } from "../config/units.js";
import { ConfigError, GatewayError, errorMessage } from "../errors.js";

/** Exit codes (DESIGN A7): 0 ok, 1 invalid input, 2 cannot reach what it needs. */
export const EXIT = { ok: 0, invalid: 1, unreachable: 2 } as const;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const stdio: Io = {
  out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
};

/** A CLI command. Its one-line summary lives in main.ts, so `--help` loads no command module. */
export interface Command {
  /** Full usage text for `edge-gateway <cmd> --help`. */
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}

export class UsageError extends GatewayError {
  constructor(message: string) {
    super("EGW_USAGE", message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with strict checking; unknown flags become a UsageError. */
export function parse<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" }, ...options }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
}

/** Maps an error to an exit code, printing it the way users need to read it. */
export function reportError(err: unknown, io: Io, usage?: string): number {
  if (err instanceof UsageError) {
    io.err(`error: ${err.message}`);
    if (usage) io.err(`\n${usage}`);
    return EXIT.invalid;
  }
  if (err instanceof ConfigError) {
    io.err(err.message);
    return EXIT.invalid;
  }
  if (err instanceof GatewayError) {
    io.err(`error: ${err.message}`);
    return err.code === "EGW_CONFIG_READ" || err.code === "EGW_CONFIG_INVALID" ? EXIT.invalid : EXIT.unreachable;
  }
  io.err(`error: ${errorMessage(err)}`);
  return EXIT.unreachable;
}

/** Reads a required string flag or throws a UsageError naming it. */
export function required(value: string | boolean | undefined | (string | boolean)[], flag: string): string {
  if (typeof value !== "string" || value === "") throw new UsageError(`${flag} is required`);
  return value;
}

/**
 * A duration flag (`--outage 10s`): undefined when absent. A unit is required on the command
 * line — a bare `5` would silently mean 5 ms.
 */
export function durationFlag(flag: string, value: string | undefined, example = "10s"): number | undefined {
  if (value === undefined) return undefined;
  const ms = /[a-z]\s*$/i.test(value) ? parseDuration(value) : undefined;
  if (ms === undefined || ms <= 0) throw new UsageError(`${flag} ${value}: write a duration with its unit, like ${example} (ms, s, m, h, d)`);
  return ms;
}

/** A device id argument: present, and a valid subject token (it becomes `gateway.<id>.…`). */
export function deviceIdArg(id: string | undefined, example: string): string {
  if (!id) throw new UsageError(`give the device id, e.g. \`${example}\``);
  if (!SUBJECT_TOKEN.test(id)) throw new UsageError(`device id ${JSON.stringify(id)} is not a valid subject token: use only letters, digits, '-' and '_'`);
  return id;
}
