import { afterAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDuration, parseSize, validateBootstrap, validateDocument } from "../../src/config/index.js";
import { runCli } from "../helpers/cli.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";

afterAll(cleanupTempDirs);

const base = `device: { id: pi-0042, region: eu-west }
nats: { servers: [nats://127.0.0.1:4222] }
`;

describe("config › units", () => {
  it("parses durations and sizes", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("5s")).toBe(5000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("soon")).toBeUndefined();
    expect(parseDuration("-5s")).toBeUndefined();
    expect(parseSize("512MiB")).toBe(512 * 1024 * 1024);
    expect(parseSize("1GB")).toBe(1_000_000_000);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize("12 parsecs")).toBeUndefined();
  });
});

describe("config › bootstrap validation", () => {
  it("fills the documented defaults", () => {
    const v = validateBootstrap({ device: { id: "pi-1", region: "eu-west" } });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.buffer).toMatchObject({ stream: "TELEMETRY", maxBytes: 512 * 1024 ** 2, maxAge: 7 * 86_400_000, duplicateWindow: 120_000 });
    expect(v.value.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(v.value.remoteConfig).toEqual({ bucket: "gateway-config", cache: "/var/lib/edge-gateway/config.json" });
    expect(v.value.http).toEqual({ listen: "127.0.0.1:9464" });
  });

  it("takes the state directory from systemd's STATE_DIRECTORY when the file sets none", () => {
    const v = validateBootstrap({ device: { id: "pi-1", region: "r" } }, { STATE_DIRECTORY: "/var/lib/edge-gateway-x" });
    expect(v.ok && v.value.state).toBe("/var/lib/edge-gateway-x");
  });

  it("reports every problem at once, each with its path", () => {
    const v = validateBootstrap({
      device: { id: "pi.1" },
      sensors: [
        { id: "a", type: "temperature", driver: "nope" },
        { id: "b c", type: "t", driver: "simulated" },
        { id: "d", type: "t", driver: "simulated", interval: "-1s" },
      ],
    });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    const paths = v.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(["device.id", "device.region", "sensors[0].driver", "sensors[1].id", "sensors[2].interval"]));
  });

  it("rejects duplicate sensor ids and regex formats without a value group", () => {
    const v = validateDocument({
      sensors: [
        { id: "a", type: "t", driver: "simulated" },
        { id: "a", type: "t", driver: "simulated" },
      ],
    });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.problems).toEqual([expect.objectContaining({ path: "sensors[1].id", message: expect.stringMatching(/duplicate id "a"/) })]);
    const r = validateDocument({ sensors: [{ id: "s", type: "t", driver: "serial-lines", port: "/dev/ttyUSB0", format: "regex", pattern: "T=(\\d+)" }] });
    expect(!r.ok && r.problems[0]!.path).toBe("sensors[0].pattern");
  });
});

describe("edge-gateway check", () => {
  const cases: [string, string, RegExp][] = [
    ["unknown driver", `${base}sensors:\n  - { id: a, type: temperature, driver: thermo-9000 }\n`, /sensors\[0\]\.driver: unknown driver "thermo-9000": use one of simulated/],
    ["token with a dot", `${base}sensors:\n  - { id: kitchen.temp, type: temperature, driver: simulated }\n`, /sensors\[0\]\.id: sensor id "kitchen\.temp" is not a valid subject token/],
    ["token with a space", `device: { id: pi-1, region: eu west }\n`, /device\.region: region "eu west" is not a valid subject token/],
    ["negative interval", `${base}sensors:\n  - { id: a, type: t, driver: simulated, interval: -5 }\n`, /sensors\[0\]\.interval: -5 is not a duration/],
    ["unparseable duration", `${base}buffer: { maxAge: a week }\n`, /buffer\.maxAge: "a week" is not a duration: write e\.g\. 500ms/],
    ["missing device id", `device: { region: eu-west }\n`, /device\.id: required/],
    ["YAML syntax", `device: { id: pi-1, region: [eu-west }\n`, /line 1, column \d+: YAML syntax error/],
  ];
  for (const [name, text, expected] of cases) {
    it(`rejects a bootstrap file with ${name}: names the path, exit 1`, async () => {
      const dir = await tempDir();
      const file = join(dir, "gateway.yaml");
      await writeFile(file, text);
      const r = await runCli(["check", "--config", file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(expected);
    });
  }

  it("says OK for a valid file and exits 0", async () => {
    const dir = await tempDir();
    const file = join(dir, "gateway.yaml");
    await writeFile(file, `${base}sensors:\n  - { id: a, type: temperature, driver: simulated, interval: 5s }\n`);
    const r = await runCli(["check", "--config", file]);
    expect(r.stdout).toMatch(/^OK: .*device pi-0042 in eu-west, 1 sensor/);
    expect(r.code).toBe(0);
  });

  it("exits 1 naming the missing file, and `run` refuses an invalid file the same way", async () => {
    const r = await runCli(["check", "--config", "/nonexistent/gateway.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read \/nonexistent\/gateway\.yaml: the file does not exist/);
    const dir = await tempDir();
    const file = join(dir, "gateway.yaml");
    await writeFile(file, `device: { id: "a b", region: x }\n`);
    const run = await runCli(["run", "--config", file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/device\.id: device id "a b" is not a valid subject token/);
  });
});

describe("config › every problem at once", () => {
  it("reports duplicate ids together with the other errors of the document", () => {
    const v = validateDocument({
      sensors: [
        { id: "a", type: "t", driver: "simulated" },
        { id: "a", type: "t", driver: "simulated", interval: "soon" },
      ],
      outputs: [
        { id: "relay", pin: 5 },
        { id: "relay", pin: 99 },
      ],
    });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.problems.map((p) => p.path)).toEqual(expect.arrayContaining(["sensors[1].interval", "sensors[1].id", "outputs[1].id", "outputs[1].pin"]));
  });
});
