/**
 * A fleet on a real 3-node hub cluster (issue 14): replicated bucket and registry, leaves
 * multi-homed to every node, registration safe under concurrency, shards, and a link monitor
 * that tells a dead link from a hub stream moving — all on real nats-server processes.
 */
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ensureHubConfigBucket } from "../../src/cloud/hub.js";
import { ensureFleet, registerDevices, registeredDevices, shardOf, shardStreams, streamOf } from "../../src/cloud/fleet.js";
import { listDevices } from "../../src/cloud/hub.js";
import { ensureLiveStreams } from "../../src/cloud/live.js";
import { LinkMonitor } from "../../src/daemon/link-monitor.js";
import { silentLogger } from "../../src/logger.js";
import { cleanupNats, leafNodeOf, startHubCluster, startLeaf, waitForJetStreamCluster, waitForLeafLink, type HubCluster } from "../helpers/nats.js";
import { startProc, stopProc, type Proc } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const bin = fileURLToPath(new URL("../../bin/edge-gateway.js", import.meta.url));
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await cleanupNats();
});

async function cluster(): Promise<HubCluster> {
  const c = await startHubCluster();
  cleanups.push(() => c.stop());
  return c;
}

async function client(c: HubCluster): Promise<NatsConnection> {
  const nc = await c.connect();
  cleanups.push(() => nc.close());
  return nc;
}

/** The node index that leads a stream (by server name hub-<i>). */
async function leaderOf(nc: NatsConnection, stream: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const leader = info.cluster?.leader ?? "";
  return Number(/^hub-(\d+)$/.exec(leader)?.[1] ?? -1);
}

describe("fleet › 3-node hub cluster", () => {
  it("init --replicas 3: config bucket and registry are R3 and stay readable and writable with their leader killed", async () => {
    const c = await cluster();
    const nc = await client(c);
    await ensureFleet(nc, { replicas: 3 });
    await ensureHubConfigBucket(nc, { replicas: 3 });
    const jsm = await jetstreamManager(nc);
    for (const s of ["TELEMETRY", "KV_gateway-config", "KV_gateway-fleet"]) expect((await jsm.streams.info(s)).config.num_replicas).toBe(3);
    const kv = await new Kvm(nc).open("gateway-config");
    await waitFor(() => kv.put("devices.pi-1", JSON.stringify({ sensors: [] })), { timeout: 30_000, interval: 250, what: "the new R3 bucket to take a write" });
    const victim = await waitFor(async () => {
      const l = await leaderOf(nc, "KV_gateway-config");
      return l >= 0 ? l + 1 : 0;
    }, { what: "a leader for the config bucket" }) - 1;
    await c.nodes[victim]!.kill9();
    // A new leader is elected within seconds; until then a write may time out.
    const rev = await waitFor(() => kv.put("devices.pi-2", JSON.stringify({ sensors: [] })), { timeout: 30_000, interval: 250, what: "a write with the leader node down" });
    expect(rev).toBeGreaterThan(0);
    expect((await kv.get("devices.pi-1"))?.json()).toEqual({ sensors: [] });
    expect(await registerDevices(nc, ["pi-9"])).toEqual([{ device: "pi-9", result: "added", stream: "TELEMETRY" }]);
    expect(await registeredDevices(nc)).toEqual(["pi-9"]);
  });

  it("a leaf given every node's URL boots and links while the first node is down", async () => {
    const c = await cluster();
    await c.nodes[0]!.kill9();
    const leaf = await startLeaf("pi-1", c.leafPorts);
    await waitForLeafLink(leaf, 30_000);
    expect(leafNodeOf(c, leaf)).toBeGreaterThan(0);
  });

  it("concurrent registration: 8 CLI processes at once (each with a dead node first in --server), none lost, live subjects too", async () => {
    const c = await cluster();
    const nc = await client(c);
    // What `cloud init --replicas 3` creates: the live streams are reconciled with the sources.
    await ensureFleet(nc, { replicas: 3 });
    await ensureLiveStreams(nc, { replicas: 3 });
    await c.nodes[0]!.kill9();
    await waitForJetStreamCluster(c);
    const servers = c.urls.join(",");
    const procs: Proc[] = [];
    cleanups.push(() => Promise.all(procs.map((p) => stopProc(p))));
    const all: string[] = [];
    for (let p = 0; p < 8; p++) {
      const ids = Array.from({ length: 10 }, (_, i) => `dev-${p}-${i}`);
      all.push(...ids);
      procs.push(startProc(process.execPath, [bin, "cloud", "add-device", ...ids, "--server", servers]));
    }
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes, procs.map((p) => p.stderr()).join("\n")).toEqual(Array(8).fill(0));
    for (const p of procs) expect(p.stdout().match(/^added: /gm)?.length).toBe(10);
    expect(await registeredDevices(nc)).toEqual([...all].sort());
    const sourced = await listDevices(nc, { streams: ["TELEMETRY"] });
    expect(sourced.map((d) => d.device)).toEqual([...all].sort());
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info("LATEST")).config.subjects?.sort()).toEqual(all.map((id) => `sensors.*.*.${id}.>`).sort());
    expect((await jsm.streams.info("EVENTS")).config.subjects?.sort()).toEqual(all.map((id) => `gateway.${id}.events.>`).sort());
  }, 180_000);

  it("shards: devices spread over K streams by a stable hash; devices and ingest see every shard", async () => {
    const c = await cluster();
    const nc = await client(c);
    await ensureFleet(nc, { replicas: 1, shards: 3 });
    const layout = { stream: "TELEMETRY", shards: 3 };
    expect(shardStreams(layout)).toEqual(["TELEMETRY-0", "TELEMETRY-1", "TELEMETRY-2"]);
    const ids = ["pi-a", "pi-b", "pi-c", "pi-d", "pi-e", "pi-f"];
    await registerDevices(nc, ids);
    const jsm = await jetstreamManager(nc);
    for (const [k, s] of shardStreams(layout).entries()) {
      const srcs = ((await jsm.streams.info(s)).config.sources ?? []).map((x) => x.filter_subject);
      expect(srcs.sort()).toEqual(ids.filter((id) => shardOf(id, 3) === k).map((id) => `sensors.*.*.${id}.>`).sort());
    }
    // The hash is stable (FNV-1a): the same id lands on the same stream in every run.
    expect(streamOf(layout, "pi-a")).toBe(`TELEMETRY-${shardOf("pi-a", 3)}`);
    expect(new Set(ids.map((id) => shardOf(id, 3))).size).toBeGreaterThan(1);
    // Two real leaves on different shards: both reach the hub, `ingest` reads both.
    const two = [ids[0]!, ids.find((id) => shardOf(id, 3) !== shardOf(ids[0]!, 3))!];
    for (const id of two) {
      const leaf = await startLeaf(id, c.leafPorts);
      await waitForLeafLink(leaf, 30_000);
      const lnc = await connect({ servers: leaf.url });
      cleanups.push(() => lnc.close());
      await (await jetstreamManager(lnc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"] });
      const js = jetstream(lnc);
      for (let i = 1; i <= 5; i++) await js.publish(`sensors.t.r.${id}.s`, JSON.stringify({ device: id, sensor: "s", type: "t", ts: Date.now(), value: i, seq: i, quality: "good" }), { msgID: `${id}.s.${i}` });
    }
    await waitFor(async () => {
      let n = 0;
      for (const s of shardStreams(layout)) n += (await jsm.streams.info(s)).state.messages;
      return n === 10;
    }, { timeout: 45_000, interval: 250, what: "both devices' readings in their shard streams" });
    const devices = await listDevices(nc, { streams: shardStreams(layout) });
    expect(devices.map((d) => d.device)).toEqual([...ids].sort());
    const ingest = startProc(process.execPath, [bin, "cloud", "ingest", "--queue", "q", "--server", c.urls.join(",")]);
    cleanups.push(() => stopProc(ingest));
    await waitFor(() => ingest.stdout().trim().split("\n").filter(Boolean).length === 10, { timeout: 30_000, what: "ingest to write all 10 readings from both shards" });
    expect(ingest.stderr()).toMatch(/ingesting from streams TELEMETRY-0, TELEMETRY-1, TELEMETRY-2/);
  });

  it("link monitor: killing the node that leads the hub stream (not the leaf's) is not 'uplink down'; the leaf's own node is", async () => {
    const c = await cluster();
    const nc = await client(c);
    await ensureFleet(nc, { replicas: 3 });
    await registerDevices(nc, ["pi-1"]);
    const leaf = await startLeaf("pi-1", c.leafPorts);
    await waitForLeafLink(leaf, 30_000);
    const lnc = await connect({ servers: leaf.url });
    cleanups.push(() => lnc.close());
    await (await jetstreamManager(lnc)).streams.add({ name: "TELEMETRY", subjects: ["sensors.>"] });
    await jetstream(lnc).publish("sensors.t.r.pi-1.s", "{}", { msgID: "pi-1.s.1" });
    const seen: string[] = [];
    const monitor = new LinkMonitor({ deviceId: "pi-1", stream: "TELEMETRY", intervalMs: 200, logger: silentLogger(), onChange: (s) => void seen.push(s.hub) });
    const ac = new AbortController();
    const running = monitor.run(lnc, ac.signal);
    cleanups.push(async () => {
      ac.abort();
      await running;
    });
    await waitFor(() => monitor.state.hub === "up" && monitor.state.sourcing === "active" && monitor.state.hubLag === 0, { timeout: 45_000, what: "link up and the hub sourcing, caught up" });
    // Kill the stream leader, unless the leaf is on it: then any other node.
    const leafNode = leafNodeOf(c, leaf);
    let victim = await leaderOf(nc, "TELEMETRY");
    if (victim === leafNode) victim = [0, 1, 2].find((i) => i !== leafNode)!;
    await c.nodes[victim]!.kill9();
    await jetstream(lnc).publish("sensors.t.r.pi-1.s", "{}", { msgID: "pi-1.s.2" });
    await waitFor(() => monitor.state.sourcing === "active" && monitor.state.hubLag === 0, { timeout: 60_000, what: "the hub sourcing again after its stream moved" });
    expect(seen).not.toContain("down");
    // Now the leaf's own node: that is a link failure (until the leaf reconnects elsewhere).
    await c.nodes[leafNode]!.kill9();
    await waitFor(() => seen.includes("down"), { timeout: 30_000, what: "uplink down when the leaf's own node dies" });
  });
});
