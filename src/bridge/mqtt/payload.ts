/**
 * Payload decoding: dot paths into JSON, number coercion, payload timestamps. Pure functions.
 *
 * Rules (documented in docs/mqtt.md):
 * - Dot path: `a.b.c`; a segment that is a non-negative integer indexes an array (`list.0.v`).
 *   Keys that themselves contain a dot cannot be addressed.
 * - Numbers: a finite JSON number; a string holding a decimal number (`"21.5"`, trimmed);
 *   `true`/`false` → 1/0; the strings `ON`/`OFF` and `true`/`false` (any case) → 1/0, as
 *   Tasmota (`POWER`) and zigbee2mqtt (`state`) send them. `null`, other strings, objects and
 *   arrays are not numeric.
 * - Time: a number (or numeric string) is epoch seconds if below 1e11, else epoch ms; a string
 *   `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]` (space instead of `T` allowed) is ISO 8601 — without
 *   an offset it is read in the gateway's local time zone (Tasmota sends its local time so).
 *   A time before 2000-01-01 (a device without NTP) or more than a day ahead is not used.
 */

/** Sentinel: the path does not exist (distinct from a present `null`). */
export const MISSING: unique symbol = Symbol("missing");

/** Split dot paths: a config has a handful, each read for every message (issue 13). */
const segments = new Map<string, readonly string[]>();

/** Follows a dot path into parsed JSON. Returns {@link MISSING} if any step is absent. */
export function getPath(root: unknown, path: string): unknown {
  let segs = segments.get(path);
  if (!segs) {
    if (segments.size >= 1000) segments.clear();
    segments.set(path, (segs = path.split(".")));
  }
  let cur: unknown = root;
  for (const seg of segs) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return MISSING;
      const i = Number(seg);
      if (i >= cur.length) return MISSING;
      cur = cur[i];
    } else if (cur !== null && typeof cur === "object") {
      if (!Object.prototype.hasOwnProperty.call(cur, seg)) return MISSING;
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return MISSING;
    }
  }
  return cur;
}

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Coerces a JSON value (or a plain payload string) to a number per the rules above. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v !== "string") return undefined;
  const s = v.trim();
  if (NUMERIC.test(s)) {
    const n = Number(s);
    return Number.isFinite(n) ? n : undefined;
  }
  switch (s.toLowerCase()) {
    case "on":
    case "true":
      return 1;
    case "off":
    case "false":
      return 0;
    default:
      return undefined;
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/;
const EARLIEST = Date.UTC(2000, 0, 1);
const DAY = 86_400_000;

/** Parses a payload timestamp to epoch ms; undefined if absent, unparseable or implausible. */
export function parseTime(v: unknown, now: number): number | undefined {
  let ms: number | undefined;
  if (typeof v === "number" || (typeof v === "string" && NUMERIC.test(v.trim()))) {
    const n = Number(v);
    if (Number.isFinite(n)) ms = n < 1e11 ? n * 1000 : n;
  } else if (typeof v === "string" && ISO.test(v.trim())) {
    const parsed = Date.parse(v.trim().replace(" ", "T"));
    if (!Number.isNaN(parsed)) ms = parsed;
  }
  if (ms === undefined || ms < EARLIEST || ms > now + DAY) return undefined;
  return Math.round(ms);
}
