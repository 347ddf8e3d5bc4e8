import { afterEach, describe, expect, it } from "vitest";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ds18b20Sensor } from "../../src/config/schema.js";
import { GatewayError } from "../../src/errors.js";
import { createDs18b20, parseW1Slave } from "../../src/drivers/onewire/index.js";
import type { Driver } from "../../src/drivers/types.js";
import { collect, testContext } from "../helpers/fake-gpio.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const A = "28-0316a2794bff";
const B = "28-3c01d6079ae1";

/** The w1-therm `w1_slave` file exactly as the kernel writes it. */
const w1 = (milli: number, crc: "YES" | "NO" = "YES") =>
  `72 01 4b 46 7f ff 0e 10 57 : crc=57 ${crc}\n72 01 4b 46 7f ff 0e 10 57 t=${milli}\n`;

/** A fake `/sys/bus/w1/devices` with the kernel's layout, including the bus master entry. */
async function w1Tree(devices: Record<string, string>): Promise<string> {
  const base = await tempDir("w1-");
  await mkdir(join(base, "w1_bus_master1"));
  for (const [address, content] of Object.entries(devices)) await setDevice(base, address, content);
  return base;
}
async function setDevice(base: string, address: string, content: string) {
  await mkdir(join(base, address), { recursive: true });
  await writeFile(join(base, address, "w1_slave"), content);
}

const sensor = (basePath: string, extra: Record<string, unknown> = {}) =>
  ds18b20Sensor.parse({ id: "tank", type: "temperature", driver: "ds18b20", basePath, ...extra });

describe("parseW1Slave", () => {
  it("parses t= in millidegrees, negative too", () => {
    expect(parseW1Slave(w1(23125))).toEqual({ ok: true, millidegrees: 23125 });
    expect(parseW1Slave(w1(-10250))).toEqual({ ok: true, millidegrees: -10250 });
  });
  it("CRC NO, an all-zero scratchpad and garbage are rejected with a reason", () => {
    expect(parseW1Slave(w1(23125, "NO"))).toEqual({ ok: false, reason: "crc" });
    expect(parseW1Slave("00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n")).toEqual({ ok: false, reason: "crc" });
    expect(parseW1Slave("")).toEqual({ ok: false, reason: "parse" });
    expect(parseW1Slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57\n")).toEqual({ ok: false, reason: "parse" });
  });
});

describe("ds18b20", () => {
  const drivers: Driver[] = [];
  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.close();
    await cleanupTempDirs();
  });

  it("a fixed address reads its w1_slave: value in Cel, sensor id = config id", async () => {
    const ctx = testContext();
    const d = createDs18b20(sensor(await w1Tree({ [A]: w1(23125) }), { address: A }), ctx);
    drivers.push(d);
    const [r, ...rest] = (await d.poll!())!;
    expect(rest).toEqual([]);
    expect(r).toMatchObject({ sensor: "tank", type: "temperature", value: 23.125, unit: "Cel", quality: "good" });
    expect(Math.abs(r!.ts - Date.now())).toBeLessThan(5_000);
    expect(ctx.reports).toEqual([]);
  });

  it("address auto finds every 28-* device (not the bus master), each as <id>-<address>", async () => {
    const base = await w1Tree({ [A]: w1(21500), [B]: w1(-3062) });
    await mkdir(join(base, "10-000802b5c1a2")); // a DS18S20: not ours
    const d = createDs18b20(sensor(base), testContext());
    drivers.push(d);
    expect((await d.poll!())!.map((r) => [r.sensor, r.value])).toEqual([
      [`tank-${A}`, 21.5],
      [`tank-${B}`, -3.062],
    ]);
  });

  it("start() yields every interval until closed", async () => {
    const d = createDs18b20(sensor(await w1Tree({ [A]: w1(20000) }), { interval: "100ms" }), testContext());
    const run = collect(d.start(new AbortController().signal));
    await waitFor(() => run.items.length >= 2, { what: "two readings" });
    await d.close();
    await run.done;
    expect(run.items[0]).toMatchObject({ sensor: `tank-${A}`, value: 20 });
  });

  it("CRC NO is retried once, then skipped and counted as rejected.crc", async () => {
    const ctx = testContext();
    const d = createDs18b20(sensor(await w1Tree({ [A]: w1(23125, "NO"), [B]: w1(19000) })), ctx);
    drivers.push(d);
    expect((await d.poll!())!.map((r) => r.sensor)).toEqual([`tank-${B}`]);
    expect(ctx.counters.read).toBe(3); // A twice (retry), B once
    expect(ctx.counters.rejected).toEqual({ crc: 1 });
  });

  it("the 85.000 °C power-on value is retried once, then published with quality bad", async () => {
    const ctx = testContext();
    const d = createDs18b20(sensor(await w1Tree({ [A]: w1(85000) })), ctx);
    drivers.push(d);
    expect(await d.poll!()).toEqual([expect.objectContaining({ value: 85, quality: "bad" })]);
    expect(ctx.counters.read).toBe(2);
    expect(ctx.counters.rejected).toEqual({ "power-on": 1 });
  });

  it("unparsable content is skipped and counted", async () => {
    const ctx = testContext();
    const d = createDs18b20(sensor(await w1Tree({ [A]: "garbage\n" })), ctx);
    drivers.push(d);
    expect(await d.poll!()).toEqual([]);
    expect(ctx.counters.rejected).toEqual({ parse: 1 });
  });

  it("a device that vanishes is counted and reported naming its address, the others go on; its return reports ok", async () => {
    const base = await w1Tree({ [A]: w1(21000), [B]: w1(22000) });
    const ctx = testContext();
    const d = createDs18b20(sensor(base), ctx);
    drivers.push(d);
    expect(await d.poll!()).toHaveLength(2);

    await rm(join(base, A), { recursive: true });
    expect((await d.poll!())!.map((r) => r.sensor)).toEqual([`tank-${B}`]);
    expect(ctx.counters.rejected).toEqual({ missing: 1 });
    expect(ctx.reports).toHaveLength(1);
    const r = ctx.reports[0]!;
    expect(r.state === "error" && (r.error as GatewayError).code).toBe("EGW_ONEWIRE");
    expect(r.state === "error" && r.error.message).toMatch(new RegExp(`1-Wire device ${A} not found under .*vanished`));

    await d.poll!(); // still missing: not reported again
    expect(ctx.reports).toHaveLength(1);

    await setDevice(base, A, w1(21000));
    expect(await d.poll!()).toHaveLength(2);
    expect(ctx.reports[1]).toEqual({ state: "ok" });
  });

  it("a fixed address that is absent, a missing bus directory, and auto with no device are clear EGW_ONEWIRE errors", async () => {
    const empty = await w1Tree({});
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [empty, { address: A }, new RegExp(`device ${A} not found`)],
      [join(empty, "nope"), {}, /bus directory .*nope is not readable .*dtoverlay=w1-gpio/],
      [empty, {}, /no DS18B20 \(28-\*\) device under .*check the wiring/],
    ];
    for (const [basePath, extra, message] of cases) {
      const ctx = testContext();
      const d = createDs18b20(sensor(basePath, extra), ctx);
      drivers.push(d);
      expect(await d.poll!()).toEqual([]);
      expect(ctx.reports).toHaveLength(1);
      const r = ctx.reports[0]!;
      expect(r.state === "error" && (r.error as GatewayError).code).toBe("EGW_ONEWIRE");
      expect(r.state === "error" && r.error.message).toMatch(message);
    }
  });

  it("with the default basePath, the sysfsRoot seam relocates /sys", async () => {
    const root = await tempDir("sysroot-");
    await setDevice(join(root, "bus", "w1", "devices"), A, w1(18250));
    const d = createDs18b20(sensor("/sys/bus/w1/devices"), testContext({ sysfsRoot: root }));
    drivers.push(d);
    expect((await d.poll!())?.[0]).toMatchObject({ sensor: `tank-${A}`, value: 18.25 });
  });
});
