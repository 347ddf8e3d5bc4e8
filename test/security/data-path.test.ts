import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { requestGateway } from "../../src/cloud/control-client.js";
import { cleanupNats } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { A, B, collect, startDaemon, startFleet, violations } from "./setup.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("security › data path with fleet auth", () => {
  it("sources, mirrors the config, answers control and delivers live wildcards once, with 0 violations", async () => {
    const env = await startFleet(cleanups);
    const hubNc = await env.hub.connect();
    cleanups.push(() => hubNc.close());
    const subs = ["sensors.>", "sensors.temperature.>", "sensors.*.eu-west.>", "gateway.*.events.>"].map((s) => collect(hubNc, s));
    await hubNc.flush();
    const da = await startDaemon(env.leaves[0]!, A, cleanups);
    const db = await startDaemon(env.leaves[1]!, B, cleanups);
    const kv = await new Kvm(hubNc).open("gateway-config");
    await kv.put(`devices.${A}`, JSON.stringify({ sensors: [{ id: "temp", type: "temperature", driver: "simulated", interval: "50ms", unit: "Cel" }] }));
    await waitFor(() => subs[3]!.got.some((g) => g.subject === `gateway.${A}.events.config`), { timeout: 20_000, what: "A's config event at the hub" });
    const status = await requestGateway<{ device: string }>(hubNc, B, "status");
    expect(status.device).toBe(B);
    await waitFor(async () => (await (await jetstreamManager(hubNc)).streams.info("TELEMETRY")).state.messages > 40, { timeout: 30_000, what: "sourced readings" });
    console.log(subs.map((s) => `${s.subject}: ${s.got.length}`));
    console.log(violations(env.hub));
    expect(violations(env.hub)).toEqual([]);
    void da;
    void db;
  }, 90_000);
});
