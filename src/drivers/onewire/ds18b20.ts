import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Ds18b20Sensor } from "./schema.js";
import { GatewayError, errorMessage } from "../../errors.js";
import type { Driver, DriverContext, Reading } from "../types.js";
import { countRejected, ticker } from "../util.js";

/** The kernel's default w1 devices directory. */
export const DEFAULT_W1_PATH = "/sys/bus/w1/devices";

/** The scratchpad value a DS18B20 holds after power-on, before its first conversion. */
export const POWER_ON_MILLIDEGREES = 85_000;

/** What one `w1_slave` read gave. */
export type W1Sample =
  | { ok: true; millidegrees: number }
  | { ok: false; reason: "crc" | "parse" };

/**
 * Parses the w1-therm `w1_slave` file:
 * ```
 * 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 * 72 01 4b 46 7f ff 0e 10 57 t=23125
 * ```
 * First line must end in `YES` (the kernel's CRC check) and not be an all-zero scratchpad
 * (which passes the CRC but means a shorted bus); second must carry `t=<millidegrees>`.
 */
export function parseW1Slave(text: string): W1Sample {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const [crcLine, dataLine] = lines;
  if (!crcLine || !/crc=[0-9a-f]{2}\s+(YES|NO)$/i.test(crcLine)) return { ok: false, reason: "parse" };
  if (!/YES$/.test(crcLine)) return { ok: false, reason: "crc" };
  // An all-zero scratchpad passes the CRC (crc=00) but is what a shorted or floating bus reads.
  if (/^(00\s+){9}:/.test(crcLine)) return { ok: false, reason: "crc" };
  const m = dataLine ? /\bt=(-?\d+)$/.exec(dataLine) : null;
  if (!m) return { ok: false, reason: "parse" };
  return { ok: true, millidegrees: Number(m[1]) };
}

/**
 * `ds18b20`: DS18B20 temperature probes on the kernel's 1-Wire bus (w1-gpio + w1-therm).
 *
 * Every `interval` reads `<basePath>/<address>/w1_slave` of the configured address, or, with
 * `address: auto`, of every `28-*` device found at that moment (sensor id `<id>-<address>`).
 * Guarantees:
 * - `value` in °C (`unit` default `Cel`), rounded to 3 decimals; `ts` when the read finished.
 * - CRC `NO` and the 85.000 °C power-on value are retried once at once. A second CRC failure
 *   is skipped (no trustworthy number exists) and counted as `rejected.crc`; a second 85.000 is
 *   published with quality `bad` (the sensor answers but reports its reset value, e.g. a
 *   brown-out in parasitic power) and counted as `rejected.power-on`. Unparsable files are
 *   skipped and counted as `rejected.parse`.
 * - A device that is missing or vanishes is counted (`rejected.missing`) and reported as an
 *   `EGW_ONEWIRE` driver error naming the address(es) and the fix; when all are back, `ok`.
 *   A missing bus directory or no `28-*` device with `auto` is reported likewise. Never throws
 *   out of the iterable.
 */
export function createDs18b20(config: Ds18b20Sensor, ctx: DriverContext): Driver {
  const now = ctx.hardware.now ?? Date.now;
  const basePath =
    config.basePath === DEFAULT_W1_PATH && ctx.hardware.sysfsRoot ? join(ctx.hardware.sysfsRoot, "bus", "w1", "devices") : config.basePath;
  const auto = config.address === "auto";
  const unit = config.unit ?? "Cel";
  let closed = new AbortController();
  /** Addresses seen by auto-discovery; one that disappears is reported as missing. */
  const known = new Set<string>();
  let lastProblem: string | undefined;

  const setHealth = (problem: string | undefined, cause?: unknown) => {
    if (problem === lastProblem) return;
    const wasFailing = lastProblem !== undefined;
    lastProblem = problem;
    if (problem === undefined) {
      if (wasFailing) {
        ctx.logger.info({ sensor: config.id }, "1-Wire recovered");
        ctx.report({ state: "ok" });
      }
      return;
    }
    ctx.counters.errors++;
    ctx.logger.warn({ sensor: config.id, problem }, "1-Wire problem");
    ctx.report({ state: "error", error: new GatewayError("EGW_ONEWIRE", problem, { cause }) });
  };

  const busFix =
    "enable 1-Wire (dtoverlay=w1-gpio in /boot/firmware/config.txt, data on GPIO 4 by default, 4.7 kΩ pull-up) and check that modules w1-gpio and w1-therm are loaded";

  const discover = async (): Promise<string[] | undefined> => {
    try {
      const names = (await readdir(basePath)).filter((n) => /^28-[0-9a-f]{12}$/i.test(n)).sort();
      return names;
    } catch (err) {
      setHealth(`sensor ${config.id}: 1-Wire bus directory ${basePath} is not readable (${errorMessage(err)}): ${busFix}`, err);
      return undefined;
    }
  };

  const readOnce = async (address: string): Promise<W1Sample | "missing"> => {
    let text: string;
    try {
      text = await readFile(join(basePath, address, "w1_slave"), "utf8");
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "ENOENT" || code === "ENODEV" || code === "ENXIO") return "missing";
      throw err;
    }
    ctx.counters.read++;
    return parseW1Slave(text);
  };

  /** Reads one device with the retry rule; undefined when skipped. */
  const sample = async (address: string): Promise<Reading | "missing" | undefined> => {
    let s = await readOnce(address);
    if (s === "missing") return s;
    if (!s.ok || s.millidegrees === POWER_ON_MILLIDEGREES) {
      const again = await readOnce(address);
      if (again === "missing") return again;
      s = again;
    }
    if (!s.ok) {
      countRejected(ctx.counters, s.reason);
      ctx.logger.debug({ sensor: config.id, address, reason: s.reason }, "DS18B20 read rejected");
      return undefined;
    }
    const powerOn = s.millidegrees === POWER_ON_MILLIDEGREES;
    if (powerOn) countRejected(ctx.counters, "power-on");
    return {
      sensor: auto ? `${config.id}-${address}` : config.id,
      type: config.type,
      ts: now(),
      value: Math.round(s.millidegrees) / 1000,
      unit,
      quality: powerOn ? "bad" : "good",
    };
  };

  const sampleAll = async (): Promise<Reading[]> => {
    let addresses: string[];
    if (auto) {
      const found = await discover();
      if (!found) return [];
      for (const a of found) known.add(a);
      addresses = [...known].sort();
      if (known.size === 0) {
        setHealth(`sensor ${config.id}: no DS18B20 (28-*) device under ${basePath}: check the wiring and the pull-up; ${busFix}`);
        return [];
      }
    } else {
      addresses = [config.address];
    }
    const readings: Reading[] = [];
    const missing: string[] = [];
    let ioError: unknown;
    for (const address of addresses) {
      try {
        const r = await sample(address);
        if (r === "missing") {
          missing.push(address);
          countRejected(ctx.counters, "missing");
        } else if (r) readings.push(r);
      } catch (err) {
        ioError = err;
        ctx.counters.errors++;
        countRejected(ctx.counters, "io");
      }
    }
    if (missing.length > 0) {
      setHealth(
        `sensor ${config.id}: 1-Wire device${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not found under ${basePath} (vanished or never present): check the probe's wiring and address`,
      );
    } else if (ioError !== undefined) {
      setHealth(`sensor ${config.id}: cannot read 1-Wire devices under ${basePath}: ${errorMessage(ioError)}`, ioError);
    } else {
      setHealth(undefined);
    }
    return readings;
  };

  const close = async () => {
    closed.abort();
  };

  return {
    async *start(signal: AbortSignal) {
      if (closed.signal.aborted) closed = new AbortController();
      const stop = AbortSignal.any([signal, closed.signal]);
      for await (const _ of ticker(config.interval, stop)) {
        const readings = await sampleAll();
        if (stop.aborted) return;
        yield* readings;
      }
    },
    async poll() {
      return sampleAll();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
