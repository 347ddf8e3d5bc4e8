import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { sensorSchema, type SensorOf } from "../../src/config/schema.js";
import { NmeaFix, createNmea, parseNmea } from "../../src/drivers/serial/index.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { waitFor } from "../helpers/wait.js";
import { closeDevices, openDevice, run, stopDrivers, testContext } from "./harness.js";

/** A GPSD capture without its `#` comment lines: what the receiver actually sent. */
function capture(name: string): string[] {
  return readFileSync(new URL(`../fixtures/nmea/${name}`, import.meta.url), "utf8")
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "" && !l.startsWith("#"));
}

const KNOT = 1852 / 3600;

/** Expected first fixes, from test/fixtures/nmea/README.md. */
const FIRST_FIX = {
  "hab-gpspi.log": { lat: 48.0690898, lon: 16.3590008, alt: 205.3, sats: 10, speed: 0.25 * KNOT },
  "nmea-fuzzy-cases.log": { lat: 41.5749702, lon: -93.7505586, alt: 278.02, sats: 9, speed: 3.252 * KNOT },
  "quectel-L70.log": { lat: 51.0680983, lon: -114.095645, alt: 1102.4, sats: 8, speed: 0.09 * KNOT },
} as const;

// Real u-blox output before the first fix (checksums as the receiver sends them).
const NO_FIX_RMC = "$GPRMC,,V,,,,,,,,,,N*53";
const NO_FIX_GGA = "$GPGGA,,,,,,0,00,99.99,,,,,,*48";

function expectFix(values: Record<string, number> | undefined, want: Record<string, number>): void {
  expect(values).toBeDefined();
  expect(Object.keys(values!).sort()).toEqual(["alt", "lat", "lon", "sats", "speed"]);
  expect(values!.lat).toBeCloseTo(want.lat!, 6);
  expect(values!.lon).toBeCloseTo(want.lon!, 6);
  expect(values!.alt).toBeCloseTo(want.alt!, 6);
  expect(values!.sats).toBe(want.sats);
  expect(values!.speed).toBeCloseTo(want.speed!, 6);
}

describe("nmea › parser", () => {
  for (const [file, want] of Object.entries(FIRST_FIX)) {
    it(`${file}: every sentence passes its checksum, and the first fix is the published position`, () => {
      const lines = capture(file);
      const fix = new NmeaFix();
      let first: Record<string, number> | undefined;
      for (const line of lines) {
        const r = parseNmea(line);
        expect(r, line).not.toHaveProperty("rejected");
        if ("sentence" in r) fix.apply(r.sentence, 0);
        // The first epoch is complete once both its GGA and its RMC are in.
        const peek = fix.take();
        if (peek && peek.values.alt !== undefined && peek.values.speed !== undefined) {
          first = peek.values;
          break;
        }
      }
      expectFix(first, want);
    });
  }

  it("rejects a corrupted sentence as checksum, a sentence without checksum as checksum, and junk as parse", () => {
    const gga = capture("hab-gpspi.log").find((l) => l.includes("GGA"))!;
    expect(parseNmea(gga.replace("205.3", "295.3"))).toEqual({ rejected: "checksum" });
    expect(parseNmea(gga.replace(/\*..$/, "*00"))).toEqual({ rejected: "checksum" });
    expect(parseNmea(gga.replace(/\*..$/, ""))).toEqual({ rejected: "checksum" });
    expect(parseNmea("\u0000\u00ffGPS?")).toEqual({ rejected: "parse" });
    expect(parseNmea("# comment")).toEqual({ rejected: "parse" });
  });

  it("treats GGA with quality 0 and RMC with status V as no fix, which clears the last position", () => {
    expect(parseNmea(NO_FIX_RMC)).toEqual({ sentence: { kind: "rmc", fix: false } });
    expect(parseNmea(NO_FIX_GGA)).toEqual({ sentence: { kind: "gga", fix: false } });
    const fix = new NmeaFix();
    const gga = parseNmea(capture("hab-gpspi.log")[2]!);
    if (!("sentence" in gga)) throw new Error("fixture GGA did not parse");
    expect(fix.apply(gga.sentence, 1)).toBeUndefined();
    const nofix = parseNmea(NO_FIX_GGA);
    if (!("sentence" in nofix)) throw new Error("no-fix GGA did not parse");
    expect(fix.apply(nofix.sentence, 2)).toBe("no-fix");
    expect(fix.take()).toBeUndefined();
  });

  it("ignores proprietary and other sentences with valid checksums", () => {
    expect(parseNmea("$PMTK001,320,2*30")).toEqual({ sentence: { kind: "other", type: "PMTK001" } });
    expect(parseNmea("$GPGSA,A,3,04,09,16,26,07,03,27,02,,,,,1.21,0.94,0.76*01")).toEqual({ sentence: { kind: "other", type: "GPGSA" } });
  });

  it("returns each fix once: no new sentence, no new position", () => {
    const fix = new NmeaFix();
    const r = parseNmea(capture("quectel-L70.log")[1]!);
    if (!("sentence" in r)) throw new Error("fixture RMC did not parse");
    fix.apply(r.sentence, 5);
    expect(fix.take()?.ts).toBe(5);
    expect(fix.take()).toBeUndefined();
  });
});

describe("nmea › over a real pty", () => {
  afterEach(async () => {
    await stopDrivers();
    await closeDevices();
    await stopPtyPairs();
    await cleanupTempDirs();
  });

  it("publishes the latest fix once per interval, skipping junk, bad checksums and no-fix sentences", async () => {
    const pair = await startPtyPair();
    const ctx = testContext();
    const config = sensorSchema.parse({ id: "gps", type: "position", driver: "nmea", port: pair.a, baudRate: 4800, interval: "1s" }) as SensorOf<"nmea">;
    const r = run(createNmea(config, ctx));
    const device = await openDevice(pair.b, 4800);
    await waitFor(() => ctx.reports.some((h) => h.state === "ok"), { timeout: 15_000, what: "port open" });

    // Three epochs of a real capture in one burst, with line noise and a corrupted sentence.
    const hab = capture("hab-gpspi.log");
    const corrupted = hab[2]!.replace("205.3", "999.9");
    const burst = [...hab.slice(0, 14), "\u0000garbage", corrupted, ...hab.slice(14)];
    const before = Date.now();
    await device.write(burst.map((l) => `${l}\r\n`).join(""));

    const thirdLat = 48 + 4.1443 / 60;
    await waitFor(() => r.readings.some((x) => Math.abs((x.values?.lat ?? 0) - thirdLat) < 1e-6), { timeout: 15_000, what: "the third epoch's position" });
    expect(ctx.counters.read).toBe(burst.length);
    // Six GGA/RMC sentences: the reading after the burst is the latest (third) epoch, not one per
    // sentence. (A tick can fall inside the burst on a loaded machine: at most one reading more.)
    expect(r.readings.length).toBeLessThanOrEqual(2);
    r.readings.splice(0, r.readings.length - 1);
    expect(r.readings[0]).toMatchObject({
      sensor: "gps",
      type: "position",
      quality: "good",
      units: { lat: "lat", lon: "lon", alt: "m", speed: "m/s", sats: "count" },
    });
    expect(r.readings[0]!.ts).toBeGreaterThanOrEqual(before);
    expectFix(r.readings[0]!.values, { lat: 48 + 4.1443 / 60, lon: 16 + 21.53949 / 60, alt: 204.8, sats: 10, speed: 0.32 * KNOT });
    expect(ctx.counters.read).toBe(burst.length);
    expect(ctx.counters.rejected).toEqual({ parse: 1, checksum: 1 });

    // The receiver loses its fix: nothing is published until the next fix arrives.
    await device.write(`${NO_FIX_RMC}\r\n${NO_FIX_GGA}\r\n`);
    await waitFor(() => ctx.counters.rejected["no-fix"] === 2, { timeout: 15_000, what: "no-fix sentences counted" });
    const quectel = capture("quectel-L70.log");
    await device.write(quectel.slice(0, 3).map((l) => `${l}\r\n`).join(""));
    await waitFor(() => r.readings.length >= 2, { timeout: 15_000, what: "second position reading" });
    expect(r.readings).toHaveLength(2);
    expectFix(r.readings[1]!.values, FIRST_FIX["quectel-L70.log"]);
  });
});
