/**
 * The daemon on arm64, the Pi's architecture, emulated by qemu-user on this x86 machine:
 * the official arm64 Node 22 runs the built CLI from a staged copy of the app whose onoff
 * `epoll` binding was cross-compiled for arm64 and whose serialport binding is the prebuilt
 * linux-arm64 one. Prepared and run by `npm run test:arm64` (scripts/test-arm64.sh), which
 * sets EGW_QEMU, EGW_ARM64_NODE and EGW_ARM64_EPOLL.
 *
 * Readings are checked by their bodies (device, sensor, seq), not their subjects, so the test
 * holds whatever the subject layout is.
 */
import { copyFile, mkdir, open, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explain, run } from "../deploy/run.js";
import { stageCli } from "../deploy/stage.js";
import { cleanupNats, startHubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, startProc, stopProc, tempDir } from "../helpers/procs.js";
import { startPtyPair, stopPtyPairs } from "../helpers/socat.js";
import { checkSequences, readStream, type StoredReading } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

const QEMU = process.env.EGW_QEMU;
const NODE = process.env.EGW_ARM64_NODE;
const EPOLL = process.env.EGW_ARM64_EPOLL;
const DEVICE = "pi-arm64";

/** The staged app (bin, dist, production node_modules with the arm64 epoll). */
let app: string;

function arm64(args: string[], opts: { cwd?: string } = {}) {
  return run(QEMU!, [NODE!, ...args], { timeoutMs: 400_000, ...opts });
}

beforeAll(async () => {
  if (!QEMU || !NODE || !EPOLL) {
    throw new Error("EGW_QEMU, EGW_ARM64_NODE and EGW_ARM64_EPOLL are not set: run this test with `npm run test:arm64`");
  }
  app = await stageCli();
  // The staged epoll.node is a hard link to the x86 build: replace the link, not the file.
  const target = join(app, "node_modules/epoll/build/Release/epoll.node");
  await rm(target, { force: true });
  await mkdir(join(target, ".."), { recursive: true });
  await copyFile(EPOLL, target);
});

afterAll(async () => {
  await killAll();
  await stopPtyPairs();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("arm64 (qemu-user)", () => {
  it("the Node is arm64; `check` accepts a valid bootstrap file and rejects a bad one naming its path", async () => {
    const arch = await arm64(["-p", "process.arch"]);
    expect(arch.stdout.trim(), explain(arch)).toBe("arm64");

    const dir = await tempDir("egw-arm64-check-");
    const good = join(dir, "good.yaml");
    await writeFile(good, `device: { id: ${DEVICE}, region: test }\nremoteConfig: false\nsensors:\n  - { id: t1, type: temperature, driver: simulated, interval: 1s }\n`);
    const ok = await arm64([join(app, "bin/edge-gateway.js"), "check", "--config", good]);
    expect(ok.code, explain(ok)).toBe(0);

    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "device: { id: 'pi 7', region: test }\n");
    const no = await arm64([join(app, "bin/edge-gateway.js"), "check", "--config", bad]);
    expect(no.code, explain(no)).toBe(1);
    expect(no.stdout + no.stderr).toContain("device.id");
  });

  it("native modules load on arm64: epoll (cross-compiled) sees a FIFO event, onoff loads, serialport picks its linux-arm64 prebuild", async () => {
    const r = await arm64([join(import.meta.dirname, "native-probe.mjs"), app]);
    expect(r.code, explain(r)).toBe(0);
    const probe = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
    expect(probe.arch).toBe("arm64");
    expect(probe.epollFile).toBe(join(app, "node_modules/epoll/build/Release/epoll.node"));
    expect(probe.epollEvent).toEqual({ sameFd: true, epollin: true });
    expect(probe.onoffGpio).toBe("function");
    // No sysfs GPIO in this container (nor under qemu): onoff says so instead of failing to load.
    expect(probe.gpioAccessible).toBe(false);
    expect(probe.serialBindingFile).toMatch(/\/prebuilds\/linux-arm64\/[^/]*armv8\.glibc\.node$/);
    expect(probe.serialBindingOpen).toBe("function");
  });

  it("run: simulated and serial (socat pty) readings reach an x86 leaf with contiguous seq per sensor; SIGTERM exits 0", async () => {
    const net = await startHubAndLeaves([DEVICE]);
    const leaf = net.leaves[0]!;
    const pty = await startPtyPair();
    const dir = await tempDir("egw-arm64-run-");
    const state = join(dir, "state");
    await mkdir(state);
    const file = join(dir, "gateway.yaml");
    await writeFile(
      file,
      [
        `device: { id: ${DEVICE}, region: test }`,
        `nats: { servers: ["${leaf.url}"] }`,
        `remoteConfig: false`,
        `http: false`,
        `state: ${JSON.stringify(state)}`,
        `sensors:`,
        `  - { id: sim-temp, type: temperature, driver: simulated, interval: 200ms, unit: Cel }`,
        `  - { id: sim-hum, type: humidity, driver: simulated, interval: 200ms, unit: "%RH" }`,
        `  - { id: serial-temp, type: temperature, driver: serial-lines, port: ${JSON.stringify(pty.a)}, baudRate: 9600, format: kv, field: t, unit: Cel }`,
        ``,
      ].join("\n"),
    );
    const daemon = startProc(QEMU!, [NODE!, join(app, "bin/edge-gateway.js"), "run", "--config", file], { cwd: state });
    const device = await open(pty.b, "w");
    const nc = await leaf.connect();
    try {
      let written = 0;
      const bySensor = (rs: StoredReading[]) => {
        const n = new Map<string, number>();
        for (const r of rs) n.set(r.body.sensor, (n.get(r.body.sensor) ?? 0) + 1);
        return n;
      };
      await waitFor(
        async () => {
          if (daemon.child.exitCode !== null) throw new Error(`the arm64 daemon exited early:\n${daemon.stdout()}\n${daemon.stderr()}`);
          // The serial driver opens its port when it starts: keep the "device" talking.
          await device.write(`t=${(20 + (written++ % 10) / 10).toFixed(1)}\r\n`);
          const n = bySensor(await readStream(nc, "TELEMETRY").catch(() => []));
          return (n.get("sim-temp") ?? 0) >= 10 && (n.get("sim-hum") ?? 0) >= 10 && (n.get("serial-temp") ?? 0) >= 5;
        },
        { what: "10 readings per simulated sensor and 5 serial readings from the arm64 daemon in the leaf stream", timeout: 400_000, interval: 500 },
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n--- daemon output\n${daemon.stdout().slice(-4000)}\n${daemon.stderr().slice(-4000)}`);
      });
      daemon.kill("SIGTERM");
      expect(await daemon.exited, daemon.stdout().slice(-4000) + daemon.stderr().slice(-4000)).toBe(0);

      const readings = await readStream(nc, "TELEMETRY");
      const { problems, ranges } = checkSequences(readings);
      expect(problems).toEqual([]);
      expect([...ranges.keys()].sort()).toEqual([`${DEVICE}.serial-temp`, `${DEVICE}.sim-hum`, `${DEVICE}.sim-temp`]);
      for (const r of readings) expect(r.body.device).toBe(DEVICE);
      const serial = readings.filter((r) => r.body.sensor === "serial-temp");
      for (const r of serial) {
        expect(r.body.unit).toBe("Cel");
        expect(r.body.value).toBeGreaterThanOrEqual(20);
        expect(r.body.value).toBeLessThanOrEqual(21);
      }
    } finally {
      await device.close();
      await nc.close();
      await stopProc(daemon);
      await net.stop();
    }
  });
});
