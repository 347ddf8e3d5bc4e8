/**
 * The logger: JSON lines in pino's format, which 0.1 wrote with pino and which journald, `jq`
 * and docs/deploy.md's recipes read:
 *
 *   {"level":30,"time":"2026-12-03T15:00:00.000Z","name":"edge-gateway","part":"seq","msg":"…"}
 *
 * Fields in that order: level (trace 10, debug 20, info 30, warn 40, error 50, fatal 60), time,
 * the bindings of the logger and its parents, the fields of the call, then `msg`.
 *
 * Why not pino itself (issue 13): the daemon uses five methods, `child` and `level`; pino with
 * its worker-thread transport, redaction and serializers was the largest part of the bundle's
 * startup code after zod and nats.js (+1.8 MiB RSS). Lines are written synchronously (as
 * `process.stdout` writes to a pipe or file on Linux), so nothing is lost at exit and no flush
 * is needed.
 */

export type LevelWithSilent = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export type Level = Exclude<LevelWithSilent, "silent">;

const VALUES: Record<LevelWithSilent, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Where lines go: anything with `write(line)` (a Writable, a test's array). */
export interface LogSink {
  write(line: string): unknown;
}

/** The level shared by a logger and the children that have not been given their own. */
class LevelCell {
  value: number;
  constructor(public name: LevelWithSilent) {
    this.value = VALUES[name];
  }
}

/** `log.info({ sensor }, "msg")`, `log.info("msg")`, or `log.error(err)` (the error under `err`). */
export type LogFn = (objOrMsg: object | string, msg?: string) => void;

export class Logger {
  readonly trace: LogFn = (a, m) => this.emit(10, a, m);
  readonly debug: LogFn = (a, m) => this.emit(20, a, m);
  readonly info: LogFn = (a, m) => this.emit(30, a, m);
  readonly warn: LogFn = (a, m) => this.emit(40, a, m);
  readonly error: LogFn = (a, m) => this.emit(50, a, m);
  readonly fatal: LogFn = (a, m) => this.emit(60, a, m);

  /** `bindings`: this logger's fields and its parents', serialised once (`,"k":v…`). */
  private constructor(
    private readonly sink: LogSink,
    private cell: LevelCell,
    private ownsCell: boolean,
    private readonly bindings: string,
  ) {}

  static create(level: LevelWithSilent, sink: LogSink, bindings: Record<string, unknown> = {}): Logger {
    return new Logger(sink, new LevelCell(level), true, fields(bindings));
  }

  /**
   * The level. Setting it sets it for this logger and every child that has no level of its own,
   * made before or after (so `log.level` in a remote config reaches every sensor's logger).
   */
  get level(): LevelWithSilent {
    return this.cell.name;
  }

  set level(level: LevelWithSilent) {
    if (!(level in VALUES)) throw new TypeError(`unknown log level "${String(level)}" (one of ${Object.keys(VALUES).join(", ")})`);
    if (!this.ownsCell) {
      this.cell = new LevelCell(level);
      this.ownsCell = true;
      return;
    }
    this.cell.name = level;
    this.cell.value = VALUES[level];
  }

  isLevelEnabled(level: Level): boolean {
    return VALUES[level] >= this.cell.value;
  }

  /** A logger that adds `bindings` to every line and follows this one's level. */
  child(bindings: Record<string, unknown>): Logger {
    return new Logger(this.sink, this.cell, false, this.bindings + fields(bindings));
  }

  private emit(level: number, a: object | string, msg?: string): void {
    if (level < this.cell.value) return;
    let line = `{"level":${level},"time":"${new Date().toISOString()}"${this.bindings}`;
    if (typeof a === "string") msg = a;
    else if (a instanceof Error) {
      line += `,"err":${json(a)}`;
      msg ??= a.message;
    } else line += fields(a as Record<string, unknown>);
    if (msg !== undefined) line += `,"msg":${JSON.stringify(msg)}`;
    try {
      this.sink.write(`${line}}\n`);
    } catch {
      // A closed stdout (EPIPE) must not take the daemon down with it.
    }
  }
}

function fields(o: Record<string, unknown>): string {
  let s = "";
  for (const k in o) {
    const v = json(o[k]);
    if (v !== undefined) s += `,${JSON.stringify(k)}:${v}`;
  }
  return s;
}

/** JSON of a field's value: errors as {type, message, code, stack, cause}, bigints as strings; never throws. */
function json(v: unknown): string | undefined {
  try {
    return JSON.stringify(v, replacer);
  } catch (err) {
    return JSON.stringify(`[unserializable: ${err instanceof Error ? err.message : String(err)}]`);
  }
}

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) {
    const e: Record<string, unknown> = { type: v.name, message: v.message };
    const code = (v as { code?: unknown }).code;
    if (code !== undefined) e.code = code;
    if (v.stack) e.stack = v.stack;
    if (v.cause !== undefined) e.cause = v.cause;
    return e;
  }
  return v;
}

const streamSinks = new Map<NodeJS.WriteStream, LogSink>();

/** A sink on stdout or stderr that stops writing, instead of crashing the daemon, once the reader has gone (EPIPE). */
function streamSink(stream: NodeJS.WriteStream): LogSink {
  let sink = streamSinks.get(stream);
  if (!sink) {
    let broken = false;
    stream.on("error", () => (broken = true));
    sink = { write: (line) => broken || stream.write(line) };
    streamSinks.set(stream, sink);
  }
  return sink;
}

/** JSON lines on stdout (journald reads them); `dest` 2 sends them to stderr, or give any sink. */
export function createLogger(level: LevelWithSilent = "info", dest: 1 | 2 | LogSink = 1): Logger {
  const sink = dest === 1 ? streamSink(process.stdout) : dest === 2 ? streamSink(process.stderr) : dest;
  return Logger.create(level, sink, { name: "edge-gateway" });
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return Logger.create("silent", { write: () => undefined });
}

/** A logger whose level, and that of every logger derived from it, can be changed at runtime. */
export interface LevelControl {
  /** Derive all loggers from this one. */
  readonly logger: Logger;
  readonly level: LevelWithSilent;
  /** Sets the level of `logger` and of every child and grandchild, made before or after. */
  setLevel(level: LevelWithSilent): void;
}

/** A child of `parent` with a level of its own, which its descendants follow. */
export function levelControl(parent: Logger): LevelControl {
  const logger = parent.child({});
  logger.level = parent.level;
  return {
    logger,
    get level() {
      return logger.level;
    },
    setLevel(level) {
      logger.level = level;
    },
  };
}
