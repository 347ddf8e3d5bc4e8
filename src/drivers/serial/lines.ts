import type { SerialLinesSensor } from "./schema.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { RejectLog, serialDriver } from "./common.js";

/** One event from {@link LineSplitter.push}. */
export type LineEvent = { line: string } | { tooLong: true };

/**
 * Splits a byte stream into lines at LF (a CR before it is dropped, so CRLF works). A line longer
 * than `maxLength` bytes (terminator excluded) yields one `tooLong` event and is discarded up to
 * its end, however many chunks it spans; memory stays bounded by `maxLength`. Empty lines are
 * skipped. Lines are decoded as UTF-8.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #length = 0;
  #discarding = false;

  constructor(readonly maxLength = 4096) {}

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.#discarding) {
        const total = this.#length + piece.length;
        // The terminator is not part of the length; an unterminated tail may still end in the CR of a CRLF.
        const limit = nl === -1 || this.#lastByte(piece) === 0x0d ? this.maxLength + 1 : this.maxLength;
        if (total > limit) {
          events.push({ tooLong: true });
          this.#drop();
          this.#discarding = nl === -1;
        } else if (piece.length > 0) {
          this.#parts.push(piece);
          this.#length += piece.length;
        }
      }
      if (nl === -1) break;
      if (!this.#discarding) {
        let line = Buffer.concat(this.#parts, this.#length);
        if (endsWithCr(line)) line = line.subarray(0, -1);
        if (line.length > 0) events.push({ line: line.toString("utf8") });
      }
      this.#discarding = false;
      this.#drop();
      start = nl + 1;
    }
    return events;
  }

  /** Forgets a partial line (the port was lost mid-line). */
  reset(): void {
    this.#drop();
    this.#discarding = false;
  }

  #lastByte(piece: Buffer): number | undefined {
    if (piece.length > 0) return piece[piece.length - 1];
    const last = this.#parts[this.#parts.length - 1];
    return last?.[last.length - 1];
  }

  #drop(): void {
    this.#parts = [];
    this.#length = 0;
  }
}

function endsWithCr(b: Buffer): boolean {
  return b.length > 0 && b[b.length - 1] === 0x0d;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A number from a token: finite decimals only (`21.5`, `-3`, `1e3`); booleans are 1/0. */
export function toNumber(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === "boolean") return raw ? 1 : 0;
  if (typeof raw !== "string") return undefined;
  const t = raw.trim();
  if (!NUMBER.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Result of parsing one line: a single value, several, or `undefined` when it does not parse. */
export type LineValue = { value: number } | { values: Record<string, number> } | undefined;

type LinesConfig = Pick<SerialLinesSensor, "format" | "field" | "column" | "delimiter" | "pattern" | "values">;

/**
 * Compiles the line format of a `serial-lines` sensor into a parser. A line parses only if
 * every configured value is present and numeric; otherwise the parser returns `undefined`.
 */
export function lineParser(config: LinesConfig): (line: string) => LineValue {
  const names = config.values ? Object.entries(config.values) : undefined;
  // Pick the value(s) out of a lookup function that returns the raw token for a key.
  const pick = (lookup: (key: string | number) => unknown, single: string | number | undefined): LineValue => {
    if (names) {
      const values: Record<string, number> = {};
      for (const [name, key] of names) {
        const n = toNumber(lookup(key));
        if (n === undefined) return undefined;
        values[name] = n;
      }
      return { values };
    }
    if (single === undefined) return undefined;
    const value = toNumber(lookup(single));
    return value === undefined ? undefined : { value };
  };

  switch (config.format) {
    case "json":
      return (line) => {
        let doc: unknown;
        try {
          doc = JSON.parse(line);
        } catch {
          return undefined;
        }
        return pick((key) => dotPath(doc, String(key)), config.field);
      };
    case "csv": {
      const delimiter = config.delimiter;
      return (line) => {
        const cols = line.split(delimiter);
        return pick((key) => cols[typeof key === "number" ? key : Number(key)], config.column);
      };
    }
    case "kv":
      return (line) => {
        const map = new Map<string, string>();
        for (const m of line.matchAll(/([^\s=:,;]+)\s*[=:]\s*([^\s,;]+)/g)) map.set(m[1]!, m[2]!);
        return pick((key) => map.get(String(key)), config.field);
      };
    case "regex": {
      const re = new RegExp(config.pattern ?? "(?<value>.+)");
      return (line) => {
        const groups = re.exec(line)?.groups;
        if (!groups) return undefined;
        return pick((key) => groups[String(key)], "value");
      };
    }
  }
}

function dotPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * The complete lines in `chunk`: each line read is counted, an overlong one is dropped and
 * counted as `too-long`.
 */
export function* completeLines(splitter: LineSplitter, chunk: Buffer, ctx: DriverContext, rejects: RejectLog): Generator<string> {
  for (const ev of splitter.push(chunk)) {
    ctx.counters.read++;
    if ("tooLong" in ev) rejects.reject("too-long");
    else yield ev.line;
  }
}

/**
 * `serial-lines`: one reading per valid line, as it arrives (`interval` is not used). Lines that
 * do not parse are counted as `parse`, overlong ones as `too-long`; neither is published.
 */
export function createSerialLines(config: SerialLinesSensor, ctx: DriverContext): Driver {
  const parse = lineParser(config);
  const now = ctx.hardware.now ?? Date.now;
  const rejects = new RejectLog(ctx, config.id);
  return serialDriver(config, ctx, {}, (emit) => {
    const splitter = new LineSplitter(config.maxLineLength);
    return {
      onData(chunk) {
        for (const line of completeLines(splitter, chunk, ctx, rejects)) {
          const parsed = parse(line);
          if (!parsed) {
            rejects.reject("parse", line);
            continue;
          }
          const reading: Reading = { sensor: config.id, type: config.type, ts: now(), ...parsed, quality: "good" };
          if (config.unit) reading.unit = config.unit;
          emit(reading);
        }
      },
      onLost() {
        splitter.reset();
      },
    };
  });
}
