/**
 * Typed errors with a stable `code`, a `name` and the original error as `cause`.
 * Codes are part of what scripts may rely on; add, never rename.
 */
export type GatewayErrorCode =
  | "EGW_CONFIG_INVALID"
  | "EGW_CONFIG_READ"
  | "EGW_NATS_CONNECT"
  | "EGW_NATS_SERVER_MISSING"
  | "EGW_STREAM"
  | "EGW_STATE"
  | "EGW_DRIVER"
  | "EGW_SERIAL_OPEN"
  | "EGW_GPIO"
  | "EGW_ONEWIRE"
  | "EGW_MQTT"
  | "EGW_USAGE"
  | "EGW_DB"
  | "EGW_HUB_AUTH"
  | "EGW_FLEET";

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "GatewayError";
  }
}

/** One validation problem: `path` like `sensors[2].pattern`, and what is wrong with how to fix it. */
export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends GatewayError {
  readonly problems: ConfigProblem[];
  /** The file or source the problems are in (`gateway.yaml`, `KV devices.pi-0042 rev 7`). */
  readonly source: string;
  constructor(source: string, problems: ConfigProblem[], options?: { cause?: unknown }) {
    super(
      "EGW_CONFIG_INVALID",
      `${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n` +
        problems.map((p) => `  ${p.path || "(root)"}: ${p.message}`).join("\n"),
      options,
    );
    this.name = "ConfigError";
    this.problems = problems;
    this.source = source;
  }
}

/** `err.message` for anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
