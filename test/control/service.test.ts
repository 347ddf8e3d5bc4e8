import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { requestGateway, ControlServiceError, discoverGateways } from "../../src/cloud/control-client.js";
import { addDevice, ensureHubStream } from "../../src/cloud/hub.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import type { GatewayStatus } from "../../src/daemon/status.js";
import { cleanupNats, startHubAndLeaves, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { runCli } from "../helpers/cli.js";
import { FakeGpio } from "../helpers/fake-gpio.js";
import { waitFor } from "../helpers/wait.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
import { startGateway } from "./helpers.js";

let net: HubAndLeaves;
let hubNc: NatsConnection;
const daemons: Daemon[] = [];
const gpio = new FakeGpio();

beforeAll(async () => {
  net = await startHubAndLeaves(["pi-a", "pi-b"]);
  daemons.push(
    await startGateway(net.leaves[0]!, "pi-a", { hardware: { gpio }, extra: { outputs: [{ id: "relay", pin: 17 }, { id: "fan", pin: 27, activeLow: true, initial: true }] } }),
    await startGateway(net.leaves[1]!, "pi-b"),
  );
  hubNc = await net.hub.connect();
  // Service subscriptions propagate over the leaf link: wait until the hub sees both.
  await waitFor(async () => (await discoverGateways(hubNc, 300)).length === 2, { what: "both gateways discoverable from the hub", timeout: 20_000 });
});

afterAll(async () => {
  await hubNc?.close();
  await Promise.all(daemons.map((d) => d.stop()));
  await net?.stop();
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});


describe("control service › over the leaf link, from the hub", () => {
  it("is discovered by $SRV.PING: `devices` lists both gateways with version and uptime", async () => {
    const r = await runCli(["devices", "--server", net.hub.url]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^DEVICE\s+REGION\s+VERSION\s+UPTIME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ["pi-a", "eu-west", VERSION],
      ["pi-b", "eu-west", VERSION],
    ]);
    expect(lines[1]).toMatch(/\d+s$/);
    const json = await runCli(["devices", "--server", net.hub.url, "--json"]);
    const found = JSON.parse(json.stdout) as { device: string; uptimeMs: number }[];
    expect(found.map((g) => g.device)).toEqual(["pi-a", "pi-b"]);
    expect(found.every((g) => g.uptimeMs >= 0 && g.uptimeMs < 120_000)).toBe(true);
    // The services client API finds the same service.
    const info = [];
    for await (const i of await new Svcm(hubNc as never).client({ strategy: "timer", maxWait: 500 } as never).info("edge-gateway")) info.push(i);
    expect(info.map((i) => i.metadata?.device).sort()).toEqual(["pi-a", "pi-b"]);
    expect(info[0]!.endpoints.map((e) => e.name).sort()).toEqual(["output", "read", "reload", "status"]);
  });

  it("answers status with device, version, link, buffer, publisher and per-sensor state", async () => {
    await waitFor(() => daemons[0]!.link.hub === "up" && daemons[0]!.link.buffer.messages > 0, { what: "pi-a link up and buffer counted", timeout: 20_000 });
    // The hub sources pi-a, not pi-b: status tells "hub copying" from "link up, hub not copying".
    await ensureHubStream(hubNc);
    await addDevice(hubNc, "pi-a");
    await waitFor(() => daemons[0]!.link.sourcing === "active", { what: "the hub sourcing pi-a's stream", timeout: 45_000 });
    const s = await requestGateway<GatewayStatus>(hubNc, "pi-a", "status");
    expect(s.device).toBe("pi-a");
    expect(s.region).toBe("eu-west");
    expect(s.version).toBe(VERSION);
    expect(s.uptimeMs).toBeGreaterThan(0);
    expect(s.configRevision).toBeNull();
    expect(s.link.hub).toBe("up");
    expect(s.link.sourcing).toBe("active");
    expect(s.buffer.messages).toBeGreaterThan(0);
    expect(s.publisher.healthy).toBe(true);
    expect(s.publisher.accepted).toBeGreaterThan(0);
    expect(s.sensors.map((x) => x.id)).toEqual(["pi-a-temp", "pi-a-hum"]);
    const temp = s.sensors[0]!;
    expect(temp.health).toBe("ok");
    expect(temp.driver).toBe("simulated");
    expect(temp.counters.read).toBeGreaterThan(0);
    expect(temp.lastReading?.unit).toBe("Cel");
    expect(s.outputs.map((o) => [o.id, o.pin, o.value])).toEqual([
      ["relay", 17, false],
      ["fan", 27, true],
    ]);

    const text = await runCli(["status", "pi-a", "--server", net.hub.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^device pi-a \(eu-west\)\s+edge-gateway 0\.1\.0\s+up /);
    expect(text.stdout).toMatch(/^link: hub up for .+?, hub sourcing active {2}buffer: /m);
    expect(text.stdout).toMatch(/^SENSOR\s+DRIVER\s+HEALTH\s+LAST READING/m);
    expect(text.stdout).toMatch(/^pi-a-temp\s+simulated\s+ok\s+[\d.]+ Cel/m);
    expect(text.stdout).toMatch(/^relay\s+17\s+off/m);
    const raw = await runCli(["status", "pi-b", "--server", net.hub.url, "--json"]);
    const b = JSON.parse(raw.stdout) as GatewayStatus;
    expect(b.device).toBe("pi-b");
    expect(b.link).toMatchObject({ hub: "up", sourcing: "waiting" });
    expect((await runCli(["status", "pi-b", "--server", net.hub.url])).stdout).toMatch(/^link: hub up for .+?, hub sourcing waiting {2}buffer: /m);
  });

  it("reads a sensor now (a fresh poll), and sets a GPIO output (the fake pin sees the level)", async () => {
    const before = Date.now();
    const r = await requestGateway<{ sensor: string; fresh: boolean; reading: { value: number; ts: number; unit: string } }>(hubNc, "pi-b", "read", { sensor: "pi-b-temp" });
    expect(r.sensor).toBe("pi-b-temp");
    expect(r.fresh).toBe(true);
    expect(r.reading.ts).toBeGreaterThanOrEqual(before - 5);
    expect(r.reading.unit).toBe("Cel");
    expect(r.reading.value).toBeGreaterThanOrEqual(18);

    const on = await requestGateway<{ id: string; value: boolean; pin: number }>(hubNc, "pi-a", "output", { output: "relay", value: true });
    expect(on).toMatchObject({ id: "relay", pin: 17, value: true });
    expect(gpio.line(17).level).toBe(1);
    const off = await requestGateway<{ value: boolean }>(hubNc, "pi-a", "output", { output: "fan", value: 0 });
    expect(off.value).toBe(false);
    // activeLow: logical off drives the pin high.
    expect(gpio.line(27).level).toBe(1);
    await requestGateway(hubNc, "pi-a", "output", { output: "fan", value: 1 });
    expect(gpio.line(27).level).toBe(0);
  });

  it("answers malformed requests with a clear service error, and keeps serving", async () => {
    const bad = async (endpoint: "read" | "output", body: string) => {
      const m = await hubNc.request(`gateway.pi-a.${endpoint}`, body, { timeout: 5000 });
      return { code: m.headers?.get("Nats-Service-Error-Code"), error: m.headers?.get("Nats-Service-Error") };
    };
    expect(await bad("read", "not json")).toEqual({ code: "400", error: 'request is not JSON: "not json"' });
    expect(await bad("read", "[1]")).toEqual({ code: "400", error: "request must be a JSON object" });
    expect(await bad("read", "{}")).toEqual({ code: "400", error: 'missing field "sensor": send {"sensor": "<id>"}' });
    expect(await bad("read", '{"sensor": 5}')).toMatchObject({ code: "400", error: expect.stringMatching(/"sensor" must be a non-empty string/) });
    expect(await bad("read", '{"sensor": "nope"}')).toEqual({ code: "404", error: 'unknown sensor "nope": this device has pi-a-temp, pi-a-hum' });
    expect(await bad("output", '{"output": "relay", "value": "on"}')).toEqual({ code: "400", error: 'field "value" must be true, false, 1 or 0, not "on"' });
    expect(await bad("output", '{"output": "relay"}')).toMatchObject({ code: "400" });
    expect(await bad("output", '{"output": "heater", "value": true}')).toEqual({ code: "404", error: 'unknown output "heater": this device has relay, fan' });
    const noOutputs = await hubNc.request("gateway.pi-b.output", '{"output": "relay", "value": true}', { timeout: 5000 });
    expect(noOutputs.headers?.get("Nats-Service-Error")).toBe('unknown output "relay": this device has no outputs');
    await expect(requestGateway(hubNc, "pi-a", "read", { sensor: "x" })).rejects.toBeInstanceOf(ControlServiceError);
    // Reload without a config file is refused clearly, not a timeout.
    await expect(requestGateway(hubNc, "pi-a", "reload")).rejects.toMatchObject({ status: 501 });
    // Still serving.
    expect((await requestGateway<GatewayStatus>(hubNc, "pi-a", "status")).device).toBe("pi-a");
  });

  it("status of an unknown device: a clear error and exit 2, not a timeout", async () => {
    const r = await runCli(["status", "pi-nope", "--server", net.hub.url]);
    expect(r.code).toBe(2);
    // "no responders" is answered at once: a clear message, never a request timeout.
    expect(r.stderr).toMatch(/device pi-nope is not connected/);
    expect(r.stderr).not.toMatch(/timeout|timed out/i);
    const unreachable = await runCli(["status", "pi-a", "--server", "nats://127.0.0.1:1"]);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot reach nats:\/\/127\.0\.0\.1:1/);
    const usage = await runCli(["status", "--server", net.hub.url]);
    expect(usage.code).toBe(1);
  });
});

describe("control service › late leaf", () => {
  it("starts once the daemon connects, also when the leaf came up after the daemon", async () => {
    const { startJetStreamServer } = await import("../helpers/nats.js");
    const leaf = await startJetStreamServer("late");
    await leaf.kill9();
    const d = await startGateway(leaf, "pi-late");
    daemons.push(d);
    expect(d.connection).toBeUndefined();
    expect(d.operations?.control).toBeUndefined();
    await leaf.restart();
    await waitFor(() => d.operations?.control, { what: "control service after the late connect", timeout: 20_000 });
    const nc = await leaf.connect();
    try {
      // Its subscriptions reach the leaf after the service is up (flushed asynchronously).
      const s = await waitFor(() => requestGateway<GatewayStatus>(nc, "pi-late", "status"), { what: "status from the control service" });
      expect(s.device).toBe("pi-late");
      expect((await discoverGateways(nc, 300)).map((g) => g.device)).toEqual(["pi-late"]);
    } finally {
      await nc.close();
    }
  });
});
