import { afterAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { findNatsServer } from "../../src/demo/nats-server.js";
import { cleanupNats, startHub, startJetStreamServer } from "../helpers/nats.js";
import { connect } from "@nats-io/transport-node";
import { cleanupTempDirs, killAll, startProc, tempDir, waitForOutput } from "../helpers/procs.js";
import { runCli, spawnCli } from "../helpers/cli.js";

const exec = promisify(execFile);

afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("edge-gateway leaf-config", () => {
  it("prints a config nats-server accepts, reflecting every flag", async () => {
    const dir = await tempDir();
    const cfg = join(dir, "gateway.yaml");
    await writeFile(cfg, "device: { id: pi-0042, region: eu-west }\nbuffer: { maxBytes: 1GiB }\n");
    const creds = join(dir, "leaf.creds");
    await writeFile(creds, "not checked by -t\n");
    const ca = join(dir, "ca.pem");
    const key = join(dir, "ca.key");
    await exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", ca, "-days", "1", "-subj", "/CN=test-ca"]);
    const store = join(dir, "js");
    const r = await runCli([
      "leaf-config", "--config", cfg, "--hub", "tls://hub.example.com:7422", "--creds", creds, "--tls-ca", ca,
      "--listen", "127.0.0.1:14222", "--store-dir", store, "--monitor", "127.0.0.1:18222",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const text = r.stdout;
    expect(text).toMatch(/server_name: "pi-0042"/);
    expect(text).toMatch(/domain: "pi-0042"/);
    expect(text).toMatch(/host: "127\.0\.0\.1"\nport: 14222/);
    expect(text).toContain(`store_dir: ${JSON.stringify(store)}`);
    expect(text).toMatch(/http: "127\.0\.0\.1:18222"/);
    expect(text).toContain(`max_file_store: ${1024 ** 3 + 64 * 1024 * 1024}`);
    expect(text).toContain('url: "tls://hub.example.com:7422"');
    expect(text).toContain(`credentials: ${JSON.stringify(creds)}`);
    expect(text).toContain(`ca_file: ${JSON.stringify(ca)}`);
    expect(text).toContain('deny_imports: ["sensors.>"]');
    const conf = join(dir, "leaf.conf");
    await writeFile(conf, text);
    // -t: nats-server parses the config (and loads the CA) and exits 0 when it is valid.
    const t = await exec(findNatsServer(), ["-t", "-c", conf]).then(() => 0, (e: { code: number }) => e.code);
    expect(t).toBe(0);
  });

  it("uses production defaults, and a started leaf takes the device id as its JetStream domain", async () => {
    const dir = await tempDir();
    const cfg = join(dir, "gateway.yaml");
    await writeFile(cfg, "device: { id: pi-7, region: eu-west }\n");
    const defaults = await runCli(["leaf-config", "--config", cfg, "--hub", "nats-leaf://hub:7422"]);
    expect(defaults.stdout).toMatch(/host: "127\.0\.0\.1"\nport: 4222/);
    expect(defaults.stdout).toContain('store_dir: "/var/lib/edge-gateway-nats/jetstream"');
    expect(defaults.stdout).toContain('http: "127.0.0.1:8222"');

    const hub = await startHub();
    const r = await runCli(["leaf-config", "--config", cfg, "--hub", hub.leafUrl, "--listen", "127.0.0.1:-1", "--store-dir", join(dir, "js"), "--monitor", "off"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/http:/);
    const conf = join(dir, "leaf.conf");
    await writeFile(conf, r.stdout);
    const server = startProc(findNatsServer(), ["-c", conf]);
    const m = (await waitForOutput(server, /Listening for client connections on 127\.0\.0\.1:(\d+)/)) as RegExpMatchArray;
    await waitForOutput(server, "Leafnode connection created");
    const nc = await connect({ servers: `nats://127.0.0.1:${m[1]}` });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.getAccountInfo()).domain).toBe("pi-7");
    await nc.close();
    server.kill("SIGKILL");
    await server.exited;
  });

  it("requires --hub and names it", async () => {
    const dir = await tempDir();
    const cfg = join(dir, "gateway.yaml");
    await writeFile(cfg, "device: { id: pi-7, region: eu-west }\n");
    const r = await runCli(["leaf-config", "--config", cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--hub is required/);
  });
});

describe("edge-gateway cloud", () => {
  it("init and add-device run twice change nothing the second time", async () => {
    const hub = await startHub();
    const s = ["--server", hub.url];
    const init1 = await runCli(["cloud", "init", ...s, "--max-age", "30d"]);
    expect(init1.code).toBe(0);
    expect(init1.stdout).toMatch(/created: stream TELEMETRY\ncreated: KV bucket gateway-config/);
    const nc = await hub.connect();
    const jsm = await jetstreamManager(nc);
    const before = await jsm.streams.info("TELEMETRY");
    const init2 = await runCli(["cloud", "init", ...s, "--max-age", "30d"]);
    expect(init2.stdout).toMatch(/unchanged: stream TELEMETRY\nunchanged: KV bucket gateway-config/);
    expect((await jsm.streams.info("TELEMETRY")).config).toEqual(before.config);
    const kvBefore = await jsm.streams.info("KV_gateway-config");
    expect(kvBefore.config).toMatchObject({ max_msgs_per_subject: 10, max_msg_size: 1024 * 1024 });

    expect((await runCli(["cloud", "add-device", "pi-1", ...s])).stdout).toMatch(/added: device pi-1/);
    const afterAdd = await jsm.streams.info("TELEMETRY");
    expect((await runCli(["cloud", "add-device", "pi-1", ...s])).stdout).toMatch(/unchanged: device pi-1 → stream TELEMETRY \(already registered\)/);
    const afterAdd2 = await jsm.streams.info("TELEMETRY");
    expect(afterAdd2.config).toEqual(afterAdd.config);
    // Each device's source: its own deliver prefix and a filter that admits only its readings.
    expect(afterAdd.config.sources).toEqual([expect.objectContaining({ name: "TELEMETRY", filter_subject: "sensors.*.*.pi-1.>", external: expect.objectContaining({ api: "$JS.pi-1.API", deliver: "deliver.pi-1" }) })]);
    // The hub stream has no subjects of its own: it only sources devices.
    expect(before.config.subjects ?? []).not.toContain("sensors.>");
    expect(afterAdd.config.subjects ?? []).toEqual([]);

    await runCli(["cloud", "add-device", "pi-2", ...s]);
    const list = await runCli(["cloud", "devices", ...s, "--json"]);
    expect((JSON.parse(list.stdout) as { device: string }[]).map((d) => d.device)).toEqual(["pi-1", "pi-2"]);
    expect((await runCli(["cloud", "remove-device", "pi-1", ...s])).stdout).toMatch(/removed: device pi-1/);
    expect((await runCli(["cloud", "remove-device", "pi-1", ...s])).stdout).toMatch(/absent: device pi-1 → stream TELEMETRY \(was not registered\)/);
    expect((await jsm.streams.info("TELEMETRY")).config.sources?.length).toBe(1);
    await nc.close();
  });

  it("exits 2 naming the server when it cannot reach it, and 1 for a bad device id", async () => {
    const r = await runCli(["cloud", "init", "--server", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach nats:\/\/127\.0\.0\.1:1/);
    const bad = await runCli(["cloud", "add-device", "pi.1", "--server", "nats://127.0.0.1:1"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a valid subject token/);
  });
});

describe("edge-gateway watch", () => {
  it("prints one line per matching reading, --json raw, and rejects invalid subjects", async () => {
    const server = await startJetStreamServer();
    const w = spawnCli(["watch", "sensors.*.eu-west.>", "--server", server.url, "--count", "2"]);
    const j = spawnCli(["watch", "sensors.pm.>", "--server", server.url, "--json", "--count", "1"]);
    await waitForOutput(w, "watching sensors.*.eu-west.>");
    await waitForOutput(j, "watching sensors.pm.>");
    const nc = await server.connect();
    const ts = Date.UTC(2026, 10, 30, 12, 0, 0);
    nc.publish("sensors.temperature.us-east.d.x", JSON.stringify({ device: "d", sensor: "x", type: "temperature", ts, value: 1, unit: "Cel", seq: 1, quality: "good" }));
    nc.publish("sensors.temperature.eu-west.d.kitchen", JSON.stringify({ device: "d", sensor: "kitchen", type: "temperature", ts, value: 21.5, unit: "Cel", seq: 7, quality: "good" }));
    const pm = JSON.stringify({ device: "d", sensor: "pm-1", type: "pm", ts, values: { pm1_0: 3, pm2_5: 5, pm10: 7 }, unit: "ug/m3", seq: 8, quality: "uncertain" });
    nc.publish("sensors.pm.eu-west.d.pm-1", pm);
    await nc.flush();
    expect(await w.exited).toBe(0);
    expect(await j.exited).toBe(0);
    await nc.close();
    expect(w.stdout().trim().split("\n")).toEqual([
      "2026-11-30T12:00:00.000Z  sensors.temperature.eu-west.d.kitchen  21.5 Cel  #7",
      "2026-11-30T12:00:00.000Z  sensors.pm.eu-west.d.pm-1  pm1_0=3 pm2_5=5 pm10=7 ug/m3 (uncertain)  #8",
    ]);
    expect(j.stdout().trim()).toBe(pm);
    for (const bad of ["sensors..x", "sensors.>.x", "sensors.temp erature", "sensors.a*"]) {
      const r = await runCli(["watch", bad, "--server", server.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/invalid subject/);
    }
  });
});

describe("cloud-side commands against something that is not NATS", () => {
  it("exit 2 with a clear error instead of hanging", async () => {
    const { createServer } = await import("node:net");
    const silent = createServer((socket) => socket.on("error", () => undefined)); // accepts, never speaks NATS
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      for (const args of [["cloud", "init"], ["config", "get", "pi-1"], ["status", "pi-1"]]) {
        const r = await runCli([...args, "--server", `nats://127.0.0.1:${port}`]);
        expect(r.code, args.join(" ")).toBe(2);
        expect(r.stderr).toMatch(/cannot reach|not connected|timeout/i);
      }
    } finally {
      silent.close();
    }
  });
});
