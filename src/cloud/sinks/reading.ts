/**
 * Turns a message body (DESIGN A2) into a `StoredReading`, or says what is wrong with it.
 * Identity comes from the body (`device`, `sensor`, `seq`), never from the subject.
 */
import type { StoredReading } from "./types.js";

function isNumberRecord(v: unknown): v is Record<string, number> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "number" && Number.isFinite(x));
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}

/** Region from `sensors.<type>.<region>.<…>` (the 3rd token), undefined for other subjects. */
export function regionOf(subject: string): string | undefined {
  const t = subject.split(".");
  return t[0] === "sensors" && t.length >= 4 ? t[2] : undefined;
}

/** The stored form of `body`, or a message naming the first problem (then the reading is not stored). */
export function toStoredReading(body: unknown, subject: string, streamSeq?: number): StoredReading | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "body is not a JSON object";
  const b = body as Record<string, unknown>;
  for (const k of ["device", "sensor", "type"] as const) {
    if (typeof b[k] !== "string" || b[k] === "") return `${k}: expected a non-empty string`;
  }
  if (typeof b.seq !== "number" || !Number.isSafeInteger(b.seq) || b.seq < 0) return "seq: expected a whole number ≥ 0";
  if (typeof b.ts !== "number" || !Number.isFinite(b.ts)) return "ts: expected ms since epoch";
  const hasValue = typeof b.value === "number" && Number.isFinite(b.value);
  const hasValues = isNumberRecord(b.values);
  if (!hasValue && !hasValues) return "expected value (a number) or values ({name: number})";
  if (b.unit !== undefined && typeof b.unit !== "string") return "unit: expected a string";
  if (b.units !== undefined && !isStringRecord(b.units)) return "units: expected {name: unit}";
  const region = regionOf(subject);
  return {
    device: b.device as string,
    sensor: b.sensor as string,
    seq: b.seq,
    type: b.type as string,
    ...(region !== undefined ? { region } : {}),
    ts: Math.round(b.ts),
    ...(hasValue ? { value: b.value as number } : {}),
    ...(hasValues ? { values: b.values as Record<string, number> } : {}),
    ...(typeof b.unit === "string" ? { unit: b.unit } : {}),
    ...(isStringRecord(b.units) ? { units: b.units } : {}),
    quality: typeof b.quality === "string" ? b.quality : "good",
    subject,
    ...(streamSeq !== undefined ? { streamSeq } : {}),
  };
}
