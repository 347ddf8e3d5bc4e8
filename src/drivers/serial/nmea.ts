import type { NmeaSensor } from "./schema.js";
import type { Driver, DriverContext } from "../types.js";
import { ticker } from "../util.js";
import { RejectLog, serialDriver } from "./common.js";
import { completeLines, LineSplitter } from "./lines.js";

/** A GGA or RMC sentence as far as a position is concerned; other valid sentences are `other`. */
export type NmeaSentence =
  | { kind: "gga"; fix: true; lat: number; lon: number; alt?: number; sats?: number }
  | { kind: "rmc"; fix: true; lat: number; lon: number; speed?: number }
  | { kind: "gga" | "rmc"; fix: false }
  | { kind: "other"; type: string };

/** Result of {@link parseNmea}: a sentence, or why the line was rejected. */
export type NmeaResult = { sentence: NmeaSentence } | { rejected: "checksum" | "parse" };

const KNOTS_TO_MS = 1852 / 3600;
const FRAME = /^[$!]([\x20-\x29\x2b-\x7e]*)\*([0-9A-Fa-f]{2})$/;

/** XOR of the characters between `$` and `*`, as NMEA 0183 defines it. */
export function nmeaChecksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return sum;
}

/**
 * Parses one NMEA 0183 sentence (any talker: `GP`, `GN`, `GL`…). The checksum is required and
 * verified; a sentence without one is rejected as `checksum` (it cannot be verified). GGA with
 * fix quality 0 and RMC with status `V` or mode `N` are `fix: false`. Never throws.
 */
export function parseNmea(line: string): NmeaResult {
  const trimmed = line.trim();
  const m = FRAME.exec(trimmed);
  if (!m) {
    return /^[$!][\x20-\x7e]*$/.test(trimmed) && !trimmed.includes("*") ? { rejected: "checksum" } : { rejected: "parse" };
  }
  const body = m[1]!;
  if (nmeaChecksum(body) !== parseInt(m[2]!, 16)) return { rejected: "checksum" };
  const f = body.split(",");
  const id = f[0] ?? "";
  // Proprietary sentences ($P…) have no talker; standard ones are 2 talker letters + 3 type letters.
  const type = id.startsWith("P") ? id : id.slice(2);
  if (type === "GGA") {
    const quality = Number(f[6]);
    if (!f[6] || !Number.isInteger(quality)) return { rejected: "parse" };
    if (quality === 0 || !f[2] || !f[4]) return { sentence: { kind: "gga", fix: false } };
    const lat = coordinate(f[2], f[3], 90);
    const lon = coordinate(f[4], f[5], 180);
    if (lat === undefined || lon === undefined) return { rejected: "parse" };
    const sentence: NmeaSentence = { kind: "gga", fix: true, lat, lon };
    const sats = optionalNumber(f[7]);
    const alt = optionalNumber(f[9]);
    if (sats === null || alt === null) return { rejected: "parse" };
    if (sats !== undefined) sentence.sats = sats;
    if (alt !== undefined) sentence.alt = alt;
    return { sentence };
  }
  if (type === "RMC") {
    const status = f[2];
    const mode = f[12];
    if (status !== "A" && status !== "V") return { rejected: "parse" };
    if (status === "V" || mode === "N" || !f[3] || !f[5]) return { sentence: { kind: "rmc", fix: false } };
    const lat = coordinate(f[3], f[4], 90);
    const lon = coordinate(f[5], f[6], 180);
    if (lat === undefined || lon === undefined) return { rejected: "parse" };
    const sentence: NmeaSentence = { kind: "rmc", fix: true, lat, lon };
    const knots = optionalNumber(f[7]);
    if (knots === null) return { rejected: "parse" };
    if (knots !== undefined) sentence.speed = knots * KNOTS_TO_MS;
    return { sentence };
  }
  return { sentence: { kind: "other", type: id } };
}

/** `ddmm.mmmm` / `dddmm.mmmm` plus hemisphere → signed decimal degrees; undefined if malformed. */
function coordinate(raw: string | undefined, hemisphere: string | undefined, max: number): number | undefined {
  if (!raw || !/^\d{3,5}(\.\d+)?$/.test(raw)) return undefined;
  const dot = raw.indexOf(".") === -1 ? raw.length : raw.indexOf(".");
  const degrees = Number(raw.slice(0, dot - 2));
  const minutes = Number(raw.slice(dot - 2));
  if (minutes >= 60) return undefined;
  const value = degrees + minutes / 60;
  if (value > max) return undefined;
  if (hemisphere === "N" || hemisphere === "E") return value;
  if (hemisphere === "S" || hemisphere === "W") return -value;
  return undefined;
}

/** Empty → undefined (field not sent); malformed → null. */
function optionalNumber(raw: string | undefined): number | undefined | null {
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

/** Values of a fix, with {@link NMEA_UNITS}; `alt`/`sats` come from GGA, `speed` from RMC. */
export type NmeaFixValues = Partial<Record<"lat" | "lon" | "alt" | "speed" | "sats", number>>;

/** Units of the `nmea` driver's values (SenML symbols). */
export const NMEA_UNITS = { lat: "lat", lon: "lon", alt: "m", speed: "m/s", sats: "count" } as const;

/**
 * The latest fix assembled from GGA and RMC sentences. A no-fix sentence clears it, so a
 * receiver that lost its fix never has its last position republished.
 */
export class NmeaFix {
  #values: NmeaFixValues = {};
  #ts = 0;
  #fresh = false;

  /** Applies a sentence read at `ts`. Returns `no-fix` when it reported no fix. */
  apply(sentence: NmeaSentence, ts: number): "no-fix" | undefined {
    if (sentence.kind === "other") return undefined;
    if (!sentence.fix) {
      this.clear();
      return "no-fix";
    }
    this.#values.lat = sentence.lat;
    this.#values.lon = sentence.lon;
    if (sentence.kind === "gga") {
      if (sentence.alt !== undefined) this.#values.alt = sentence.alt;
      if (sentence.sats !== undefined) this.#values.sats = sentence.sats;
    } else if (sentence.speed !== undefined) {
      this.#values.speed = sentence.speed;
    }
    this.#ts = ts;
    this.#fresh = true;
    return undefined;
  }

  /** The fix, if one arrived since the last `take()`; each fix is returned at most once. */
  take(): { ts: number; values: NmeaFixValues } | undefined {
    if (!this.#fresh) return undefined;
    this.#fresh = false;
    return { ts: this.#ts, values: { ...this.#values } };
  }

  clear(): void {
    this.#values = {};
    this.#fresh = false;
  }
}

/** Longest NMEA line accepted (the standard says 82; proprietary sentences run longer). */
const NMEA_MAX_LINE = 1024;

/**
 * `nmea`: GGA and RMC sentences (checksum verified) build the latest fix; every `interval` the
 * fix — if a new one arrived since the last reading — is published as `values: {lat, lon, alt,
 * speed, sats}` with `ts` the time it was read. No fix, no reading.
 */
export function createNmea(config: NmeaSensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  const rejects = new RejectLog(ctx, config.id);
  return serialDriver(config, ctx, {}, (emit) => {
    const splitter = new LineSplitter(NMEA_MAX_LINE);
    const fix = new NmeaFix();
    return {
      onData(chunk) {
        for (const line of completeLines(splitter, chunk, ctx, rejects)) {
          const result = parseNmea(line);
          if ("rejected" in result) {
            rejects.reject(result.rejected, line);
            continue;
          }
          if (fix.apply(result.sentence, now()) === "no-fix") rejects.reject("no-fix", line);
        }
      },
      onLost() {
        splitter.reset();
        fix.clear();
      },
      async run(_lease, signal) {
        for await (const _ of ticker(config.interval, signal)) {
          const latest = fix.take();
          if (!latest) continue;
          const units: Record<string, string> = {};
          for (const name of Object.keys(latest.values)) units[name] = NMEA_UNITS[name as keyof typeof NMEA_UNITS];
          emit({ sensor: config.id, type: config.type, ts: latest.ts, values: latest.values, units, quality: "good" });
        }
      },
    };
  });
}
