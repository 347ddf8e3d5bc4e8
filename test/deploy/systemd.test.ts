/**
 * The systemd units: `systemd-analyze verify` with the real systemd (252 on Debian 12), and
 * the settings the deployment relies on.
 *
 * `verify` refuses a unit whose ExecStart binary does not exist. nats-server is installed
 * here at its real path (/usr/sbin/nats-server from Debian's package); the gateway's
 * /opt/edge-gateway/bin/edge-gateway.js is not, so the test verifies a copy of the unit
 * whose /opt/edge-gateway prefix points into a temp dir holding the real launcher. Nothing
 * else in the unit is changed.
 */
import { copyFile, mkdir, readFile, writeFile, chmod } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { REPO, explain, parseUnit, run, timespanSeconds } from "./run.js";

const GATEWAY_UNIT = join(REPO, "systemd/edge-gateway.service");
const NATS_UNIT = join(REPO, "systemd/edge-gateway-nats.service");

let dir: string;
let systemdVersion = 0;

beforeAll(async () => {
  const v = await run("systemd-analyze", ["--version"]);
  expect(v.code, `systemd-analyze is needed (Debian package systemd): ${explain(v)}`).toBe(0);
  systemdVersion = Number(/systemd (\d+)/.exec(v.stdout)?.[1] ?? 0);
  dir = await tempDir("egw-units-");
  const app = join(dir, "opt/edge-gateway/bin");
  await mkdir(app, { recursive: true });
  await copyFile(join(REPO, "bin/edge-gateway.js"), join(app, "edge-gateway.js"));
  await chmod(join(app, "edge-gateway.js"), 0o755);
  const unit = await readFile(GATEWAY_UNIT, "utf8");
  await writeFile(join(dir, "edge-gateway.service"), unit.replaceAll("/opt/edge-gateway/", `${dir}/opt/edge-gateway/`));
  await copyFile(NATS_UNIT, join(dir, "edge-gateway-nats.service"));
});

afterAll(cleanupTempDirs);

describe("systemd units", () => {
  it("both pass systemd-analyze verify without a single warning", async () => {
    const r = await run("systemd-analyze", ["verify", join(dir, "edge-gateway.service"), join(dir, "edge-gateway-nats.service")]);
    expect(r.code, explain(r)).toBe(0);
    // verify exits 0 on unknown keys (it only warns): any output is a finding.
    expect(r.stderr + r.stdout, explain(r)).toBe("");
  });

  it("systemd-analyze security rates both units OK (gateway <= 2.5, leaf <= 2.0; Debian's stock nats-server.service: 9.0)", async () => {
    for (const [unit, max] of [
      ["edge-gateway.service", 2.5],
      ["edge-gateway-nats.service", 2.0],
    ] as const) {
      const r = await run("systemd-analyze", ["security", "--offline=yes", join(dir, unit)]);
      expect(r.code, explain(r)).toBe(0);
      const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout + r.stderr);
      expect(m, explain(r)).not.toBeNull();
      expect(Number(m![1]), `${unit}\n${r.stdout}`).toBeLessThanOrEqual(max);
    }
  });

  it("verify does report a missing ExecStart binary (so the check above is not vacuous)", async () => {
    const unit = await readFile(GATEWAY_UNIT, "utf8");
    const broken = join(dir, "broken.service");
    await writeFile(broken, unit.replaceAll("/opt/edge-gateway/", `${dir}/nowhere/`));
    const r = await run("systemd-analyze", ["verify", broken]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is not executable|No such file/);
  });

  it("the growing-backoff drop-in is only for systemd >= 254 (Debian 12 has 252)", async () => {
    const unit = await readFile(GATEWAY_UNIT, "utf8");
    const dropIn = await readFile(join(REPO, "systemd/restart-backoff.conf"), "utf8");
    const combined = join(dir, "with-backoff.service");
    await writeFile(
      combined,
      unit.replaceAll("/opt/edge-gateway/", `${dir}/opt/edge-gateway/`) + dropIn.replace("[Service]", ""),
    );
    const r = await run("systemd-analyze", ["verify", combined]);
    if (systemdVersion < 254) {
      expect(r.stderr).toMatch(/Unknown key '?RestartSteps'?/);
    } else {
      expect(r.stderr + r.stdout, explain(r)).toBe("");
    }
  });

  it("edge-gateway.service: notify + watchdog, restart policy, user, directories, stop timeout", async () => {
    const u = parseUnit(await readFile(GATEWAY_UNIT, "utf8"));
    const unit = u.get("Unit")!;
    const svc = u.get("Service")!;
    expect(svc.get("Type")).toEqual(["notify"]);
    // Node has no AF_UNIX datagrams: notifications may come from a `systemd-notify` child.
    expect(svc.get("NotifyAccess")).toEqual(["all"]);
    expect(timespanSeconds(svc.get("WatchdogSec")![0]!)).toBeGreaterThanOrEqual(10);
    expect(svc.get("Restart")).toEqual(["on-failure"]);
    expect(timespanSeconds(svc.get("RestartSec")![0]!)).toBeGreaterThan(0);
    // Exit 1 = invalid config (DESIGN A7): not worth restarting.
    expect(svc.get("RestartPreventExitStatus")).toEqual(["1"]);
    expect(svc.get("ExecStart")![0]).toBe("/opt/edge-gateway/bin/edge-gateway.js run --config /etc/edge-gateway/gateway.yaml");
    expect(svc.get("User")).toEqual(["edge-gateway"]);
    expect(svc.get("SupplementaryGroups")![0]!.split(/\s+/).sort()).toEqual(["dialout", "gpio"]);
    expect(svc.get("StateDirectory")).toEqual(["edge-gateway"]);
    expect(svc.get("ConfigurationDirectory")).toEqual(["edge-gateway"]);
    // The daemon bounds its drain at 20 s; systemd must wait longer before SIGKILL.
    expect(timespanSeconds(svc.get("TimeoutStopSec")![0]!)).toBeGreaterThan(20);
    expect(unit.get("After")!.join(" ")).toContain("edge-gateway-nats.service");
    expect(unit.get("Wants")!.join(" ")).toContain("edge-gateway-nats.service");
  });

  it("edge-gateway.service: hardened, with serial and GPIO devices allowed and nothing else", async () => {
    const svc = parseUnit(await readFile(GATEWAY_UNIT, "utf8")).get("Service")!;
    for (const [key, value] of [
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["NoNewPrivileges", "yes"],
      ["DevicePolicy", "closed"],
      ["ProtectKernelTunables", "yes"],
    ] as const) {
      expect(svc.get(key), key).toEqual([value]);
    }
    expect(svc.get("RestrictAddressFamilies")![0]!.split(/\s+/).sort()).toEqual(["AF_INET", "AF_INET6", "AF_UNIX"]);
    // V8's JIT needs W+X pages: MemoryDenyWriteExecute would kill node.
    expect(svc.has("MemoryDenyWriteExecute")).toBe(false);
    const devices = svc.get("DeviceAllow")!.map((d) => d.split(/\s+/)[0]);
    expect(devices.sort()).toEqual(["/dev/gpiomem", "char-gpiochip", "char-ttyACM", "char-ttyAMA", "char-ttyS", "char-ttyUSB"]);
    // DeviceAllow= takes no globs: a `*` would silently allow nothing.
    for (const d of devices) expect(d).not.toContain("*");
    // sysfs GPIO (onoff) writes export/unexport and gpioN/* under /sys/devices/platform.
    expect(svc.get("ReadWritePaths")![0]!.split(/\s+/).sort()).toEqual(["-/sys/class/gpio", "-/sys/devices/platform"]);
  });

  it("edge-gateway-nats.service: runs Debian's nats-server on the generated leaf config as its own user", async () => {
    const u = parseUnit(await readFile(NATS_UNIT, "utf8"));
    const svc = u.get("Service")!;
    const [binary, ...args] = svc.get("ExecStart")![0]!.split(/\s+/);
    expect(binary).toBe("/usr/sbin/nats-server");
    // The path Debian's nats-server package really installs (not /usr/bin).
    const dpkg = await run("dpkg", ["-L", "nats-server"]);
    expect(dpkg.stdout.split("\n"), explain(dpkg)).toContain(binary);
    expect(existsSync(binary!)).toBe(true);
    expect(args).toEqual(["--config", "/etc/edge-gateway/leaf.conf"]);
    expect(svc.get("User")).toEqual(["edge-gateway-nats"]);
    expect(svc.get("StateDirectory")).toEqual(["edge-gateway-nats"]);
    expect(svc.get("Restart")).toEqual(["on-failure"]);
    expect(svc.get("ProtectSystem")).toEqual(["strict"]);
    expect(u.get("Unit")!.get("ConditionPathExists")).toEqual(["/etc/edge-gateway/leaf.conf"]);
  });
});
