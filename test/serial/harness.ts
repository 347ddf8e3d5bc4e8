/** Shared bits of the serial driver tests: a driver context that records reports, a collector, a device end. */
import { SerialPort } from "serialport";
import { silentLogger } from "../../src/logger.js";
import { nodeSerialFactory } from "../../src/drivers/serial/index.js";
import type { Driver, DriverContext, DriverHealth, Reading } from "../../src/drivers/types.js";
import { newCounters } from "../../src/drivers/util.js";

export interface TestContext extends DriverContext {
  reports: DriverHealth[];
}

/**
 * A context with fresh counters and a fresh production serial factory, so that ports are shared
 * only between the drivers of one test (pass the same `serial` to share).
 */
export function testContext(serial = nodeSerialFactory()): TestContext {
  const reports: DriverHealth[] = [];
  return {
    logger: silentLogger(),
    stateDir: "/nonexistent",
    counters: newCounters(),
    report: (h) => reports.push(h),
    hardware: { serial },
    reports,
  };
}

/** Runs a driver in the background, collecting its readings until `stop()`. */
export interface Running {
  readings: Reading[];
  stop(): Promise<void>;
}

const running = new Set<Running>();

export function run(driver: Driver): Running {
  const ac = new AbortController();
  const readings: Reading[] = [];
  const done = (async () => {
    for await (const r of driver.start(ac.signal)) readings.push(r);
  })();
  const r: Running = {
    readings,
    async stop() {
      ac.abort();
      await driver.close();
      await done;
      running.delete(r);
    },
  };
  running.add(r);
  return r;
}

/** Stops every driver still running (afterEach). */
export async function stopDrivers(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

/** The device's end of a pty pair, opened with serialport: what a sensor would write and read. */
export interface Device {
  write(data: Buffer | string): Promise<void>;
  received(): Buffer;
  onData(listener: (chunk: Buffer) => void): void;
  port: SerialPort;
  close(): Promise<void>;
}

const devices = new Set<Device>();

export async function openDevice(path: string, baudRate = 9600): Promise<Device> {
  const port = new SerialPort({ path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  const chunks: Buffer[] = [];
  port.on("data", (c: Buffer) => chunks.push(c));
  port.on("error", () => undefined);
  const dev: Device = {
    port,
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        port.write(data, (err) => (err ? reject(err) : port.drain(() => resolve())));
      }),
    received: () => Buffer.concat(chunks),
    onData: (l) => port.on("data", l),
    close: () =>
      new Promise<void>((resolve) => {
        devices.delete(dev);
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
  devices.add(dev);
  return dev;
}

export async function closeDevices(): Promise<void> {
  await Promise.all([...devices].map((d) => d.close()));
}
