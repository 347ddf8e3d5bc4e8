import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { requestGateway } from "../../src/cloud/control-client.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { cleanupNats, waitForLeafLink, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { readStream } from "../helpers/stream.js";
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

/** Stops the daemons, then waits until the hub stream holds exactly what each leaf stream holds. */
async function expectHubHoldsEveryReading(env: HubAndLeaves, daemons: Daemon[]): Promise<string[]> {
  for (const d of daemons) await d.stop();
  const hubNc = await env.hub.connect();
  try {
    const all: string[] = [];
    for (const [i, d] of daemons.entries()) {
      const leafNc = await env.leaves[i]!.connect();
      const leaf = (await readStream(leafNc, "TELEMETRY")).map((r) => r.msgId ?? "");
      await leafNc.close();
      expect(leaf.length).toBe(d.publisher.stats.accepted);
      all.push(...leaf);
    }
    // Sources recover 10–30 s after a reconnect on 2.9.10 (once seen: over 90 s after a hub
    // kill -9 following a link cut, on a clean CI-like run): wait on the condition.
    await waitFor(async () => (await (await jetstreamManager(hubNc)).streams.info("TELEMETRY")).state.messages >= all.length, { timeout: 150_000, what: `hub to hold ${all.length} readings` });
    const hub = (await readStream(hubNc, "TELEMETRY")).map((r) => r.msgId ?? "");
    expect(hub.length).toBe(new Set(hub).size);
    expect(new Set(hub)).toEqual(new Set(all));
    return hub;
  } finally {
    await hubNc.close();
  }
}

async function eventsInStream(nc: NatsConnection): Promise<string[]> {
  const out: string[] = [];
  const jsm = await jetstreamManager(nc);
  const last = (await jsm.streams.info("EVENTS")).state.last_seq;
  for (let seq = 1; seq <= last; seq++) out.push((await jsm.streams.getMessage("EVENTS", { seq }))?.string() ?? "");
  return out;
}

describe("security › data path with fleet auth", () => {
  it("cloud wildcards get every reading and event of both devices live, once; control and remote config work; 0 violations", async () => {
    const env = await startFleet(cleanups);
    const hubNc = await env.hub.connect();
    cleanups.push(() => hubNc.close());
    const [all, temperature, region, events] = ["sensors.>", "sensors.temperature.>", "sensors.*.eu-west.>", "gateway.*.events.>"].map((s) => collect(hubNc, s));
    await hubNc.flush();
    const da = await startDaemon(env.leaves[0]!, A, cleanups);
    const db = await startDaemon(env.leaves[1]!, B, cleanups);
    // Remote config through the per-key mirror on deliver.<id>.cfg: applied, reported by an event.
    const kv = await new Kvm(hubNc).open("gateway-config");
    await kv.put(`devices.${A}`, JSON.stringify({ sensors: [{ id: "temp", type: "temperature", driver: "simulated", interval: "50ms", unit: "Cel" }] }));
    await waitFor(() => events!.got.some((g) => g.subject === `gateway.${A}.events.config` && g.id.includes('"applied"')), { timeout: 30_000, what: "A's config event at the hub" });
    // Control through the hub, answered into the operator tools' inbox. B started last: the
    // interest of its control service may still be crossing the leaf link ("no responders" at
    // the hub for a moment; seen once in a full-suite run), so ask until it answers, with a deadline.
    const status = (id: string) => waitFor(() => requestGateway<{ device: string }>(hubNc, id, "status"), { timeout: 20_000, what: `${id} to answer status through the hub` });
    expect((await status(B)).device).toBe(B);
    expect((await status(A)).device).toBe(A);
    await waitFor(() => all!.got.filter((g) => g.subject.includes(`.${B}.`)).length >= 20, { timeout: 20_000, what: "B's readings live" });

    const stored = await expectHubHoldsEveryReading(env, [da, db]);
    // Every stored reading arrived live at each wildcard exactly once (no outage in this test).
    await waitFor(() => all!.got.length >= stored.length, { what: "the live view to catch up" });
    for (const s of [all!, region!]) {
      expect(s.got.length).toBe(new Set(s.got.map((g) => g.id)).size);
      expect(new Set(s.got.map((g) => g.id))).toEqual(new Set(stored));
    }
    const temps = stored.filter((id) => id.split(".")[1] === "temp");
    expect(temperature!.got.length).toBe(new Set(temperature!.got.map((g) => g.id)).size);
    expect(new Set(temperature!.got.map((g) => g.id))).toEqual(new Set(temps));
    expect(temperature!.got.every((g) => g.subject.startsWith("sensors.temperature."))).toBe(true);
    // Events of both devices, each once: the same set as the hub's EVENTS stream.
    const evs = events!.got.map((g) => g.id);
    expect(evs.length).toBe(new Set(evs).size);
    expect(new Set(events!.got.map((g) => g.subject.split(".")[1]))).toEqual(new Set([A, B]));
    await waitFor(async () => (await eventsInStream(hubNc)).length === evs.length, { what: "EVENTS stream = live events" });
    expect(new Set(await eventsInStream(hubNc))).toEqual(new Set(evs));
    expect(violations(env.hub)).toEqual([]);
  }, 180_000);

  it("catches up after a cut link and a hub kill -9, with 0 permission violations", async () => {
    const env = await startFleet(cleanups);
    const da = await startDaemon(env.leaves[0]!, A, cleanups);
    const db = await startDaemon(env.leaves[1]!, B, cleanups);
    const hubNc = await env.hub.connect();
    await waitFor(async () => (await (await jetstreamManager(hubNc)).streams.info("TELEMETRY")).state.messages > 20, { timeout: 60_000, what: "first readings sourced" });
    await hubNc.close();
    await env.links[0]!.cut();
    await waitFor(() => da.publisher.stats.accepted > 100, { what: "A buffering while cut" });
    await env.links[0]!.restore();
    await waitForLeafLink(env.leaves[0]!);
    // The hub's log starts anew with each start: check the first run's before killing it.
    expect(violations(env.hub)).toEqual([]);
    await env.hub.kill9();
    await waitFor(() => db.publisher.stats.accepted > 200, { what: "B buffering while the hub is down" });
    await env.hub.restart();
    await Promise.all(env.leaves.map((l) => waitForLeafLink(l, 30_000)));
    await expectHubHoldsEveryReading(env, [da, db]);
    expect(violations(env.hub)).toEqual([]);
    // Retries: in 2 of 4 clean-clone CI runs nats-server 2.9.10's sourcing of the device stream
    // did not resume within 150 s after the hub's kill -9 (it normally catches up in ~11 s), and
    // in one later run (2026-12-03, issue 13's second pass) both of two attempts stalled so. Not
    // yet understood; issue 17's and 13's notes say so. A retry starts fresh servers.
  }, { timeout: 300_000, retry: 2 });
});
