/**
 * Text output of the ingest queries, shared by the CLI and the demo.
 */
import type { StoredReading } from "./sinks/index.js";

/** `1.2s`, `3m 05s`, `2h 10m`, `4d 3h`. */
export function spanText(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Left-aligned columns separated by two spaces; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n");
}

/** `21.5`, or `pm2_5=5 pm10=7` for multi-valued readings. */
export function valueText(r: StoredReading): string {
  if (r.value !== undefined) return String(r.value);
  return Object.entries(r.values ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

export function unitText(r: StoredReading): string {
  return r.unit ?? (r.units ? Object.entries(r.units).map(([k, u]) => `${k}:${u}`).join(" ") : "");
}

/** The `cloud latest` table: one row per sensor with the age of its last reading. */
export function latestTable(rows: readonly StoredReading[], now = Date.now()): string {
  if (rows.length === 0) return "no readings stored (yet)";
  return table([
    ["DEVICE", "SENSOR", "TYPE", "REGION", "SEQ", "VALUE", "UNIT", "QUALITY", "AGE"],
    ...rows.map((r) => [r.device, r.sensor, r.type, r.region ?? "", String(r.seq), valueText(r), unitText(r), r.quality, spanText(now - r.ts)]),
  ]);
}
