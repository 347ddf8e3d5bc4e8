import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { requestGateway } from "../../src/cloud/control-client.js";
import { cleanupNats, startLeaf, testFleetKeys, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, tempDir } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { A, B, collect, startDaemon, startFleet } from "./setup.js";

/**
 * From A's stock leaf (authenticated with A's credential), nothing reaches or reads B. Each
 * test observes the target side (a hub subscriber, B, the bucket), and uses a marker that A
 * may send after the forbidden attempt: once the marker arrived, the attempt had its chance.
 */
const cleanups: (() => Promise<unknown>)[] = [];
let env: HubAndLeaves;
let hubNc: NatsConnection;
/** A client of A's leaf: anything a process on device A can do. */
let an: NatsConnection;
let bn: NatsConnection;

beforeAll(async () => {
  env = await startFleet(cleanups);
  hubNc = await env.hub.connect();
  an = await env.leaves[0]!.connect();
  bn = await env.leaves[1]!.connect();
  cleanups.push(() => hubNc.close(), () => an.close(), () => bn.close());
  await startDaemon(env.leaves[0]!, A, cleanups);
  await startDaemon(env.leaves[1]!, B, cleanups);
  await waitFor(async () => (await requestGateway<{ device: string }>(hubNc, B, "status", {}, 1000)).device === B, { timeout: 30_000, what: "B's control service" });
}, 120_000);

afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

const bucketSeq = async () => (await (await jetstreamManager(hubNc)).streams.info("KV_gateway-config")).state.last_seq;

describe("security › isolation of device A from device B (stock leaf, A's credential)", () => {
  it("A cannot publish readings or events as B", async () => {
    const watchers = ["sensors.>", `sensors.*.*.${B}.>`, "gateway.*.events.>", `gateway.${B}.events.>`].map((s) => collect(hubNc, s));
    await hubNc.flush();
    an.publish(`sensors.temperature.eu-west.${B}.forged`, JSON.stringify({ device: B, sensor: "forged", value: 99 }));
    an.publish(`gateway.${B}.events.config`, JSON.stringify({ device: B, forged: true }));
    an.publish(`sensors.temperature.eu-west.${A}.marker`, "marker");
    an.publish(`gateway.${A}.events.marker`, "marker");
    await waitFor(() => watchers[0]!.got.some((g) => g.subject.endsWith(".marker")) && watchers[2]!.got.some((g) => g.subject.endsWith(".marker")), { what: "A's markers at the hub" });
    for (const w of watchers) expect(w.got.filter((g) => g.subject.includes("forged") || g.id.includes("forged"))).toEqual([]);
    // Neither did it reach the hub's per-device streams.
    const latest = await (await jetstreamManager(hubNc)).streams.info("LATEST", { subjects_filter: `sensors.*.*.${B}.forged` });
    expect(latest.state.subjects ?? {}).toEqual({});
  });

  it("A does not receive B's control requests or anything else addressed to B", async () => {
    const sniff = ["gateway.>", `gateway.${B}.>`, "$SRV.>", "_INBOX_ops.>", `_INBOX_${B}.>`, "_INBOX.>"].map((s) => collect(an, s));
    await an.flush();
    // The hub must have A's interest in gateway.> before the test can mean anything: A's own marker proves it.
    await waitFor(async () => {
      hubNc.publish(`gateway.${A}.marker`, "m");
      await hubNc.flush();
      return sniff[0]!.got.some((g) => g.subject === `gateway.${A}.marker`);
    }, { what: "A's subscription to reach the hub" });
    // B answers (the target received the request)…
    expect((await requestGateway<{ device: string }>(hubNc, B, "status")).device).toBe(B);
    hubNc.publish(`gateway.${A}.marker2`, "m");
    await waitFor(() => sniff[0]!.got.some((g) => g.subject === `gateway.${A}.marker2`), { what: "second marker" });
    // …and A saw neither the request nor the reply.
    for (const s of sniff) expect(s.got.filter((g) => g.subject.includes(B) || g.subject.startsWith("_INBOX"))).toEqual([]);
  });

  it("A cannot read B's config by direct get, msg get, a consumer on B's key, or by sniffing deliver.> and $KV.>", async () => {
    const kv = await new Kvm(hubNc).open("gateway-config");
    const secretB = JSON.stringify({ sensors: [], log: { level: "debug" }, note: "B-secret" });
    await kv.put(`devices.${B}`, secretB);
    const sniff = ["deliver.>", "$KV.>", `deliver.${B}.>`, "$JS.FC.>"].map((s) => collect(an, s));
    await an.flush();
    const key = `$KV.gateway-config.devices.${B}`;
    const attempts: [string, string][] = [
      [`$JS.hub.API.DIRECT.GET.KV_gateway-config.${key}`, ""],
      ["$JS.hub.API.DIRECT.GET.KV_gateway-config", JSON.stringify({ last_by_subj: key })],
      ["$JS.hub.API.STREAM.MSG.GET.KV_gateway-config", JSON.stringify({ last_by_subj: key })],
      [`$JS.hub.API.CONSUMER.CREATE.KV_gateway-config.sniff.${key}`, JSON.stringify({ stream_name: "KV_gateway-config", config: { name: "sniff", filter_subject: key, deliver_subject: `deliver.${A}.sniff`, deliver_policy: "last_per_subject", ack_policy: "none" } })],
      ["$JS.hub.API.CONSUMER.CREATE.KV_gateway-config", JSON.stringify({ stream_name: "KV_gateway-config", config: { filter_subject: key, deliver_subject: `deliver.${A}.sniff2`, ack_policy: "none" } })],
    ];
    for (const [subject, body] of attempts) {
      const r = await an.request(subject, body, { timeout: 2000 }).then((m) => m.string(), (e: Error) => `refused: ${e.message}`);
      expect(r, subject).toMatch(/^refused/);
    }
    // The target: no consumer was made on the hub bucket for A.
    const consumers: string[] = [];
    for await (const c of (await jetstreamManager(hubNc)).consumers.list("KV_gateway-config")) consumers.push(c.config.deliver_subject ?? c.name);
    expect(consumers.filter((d) => d.includes("sniff"))).toEqual([]);
    // B's mirror receives a new revision of B's key; then A's own key changes.
    const rev = await kv.put(`devices.${B}`, secretB.replace("B-secret", "B-secret-2"));
    const bMirror = await new Kvm(bn).open("gateway-config");
    await waitFor(async () => (await bMirror.get(`devices.${B}`))?.revision === rev, { timeout: 20_000, what: "B's mirror to receive B's key" });
    await kv.put(`devices.${A}`, JSON.stringify({ sensors: [] }));
    await waitFor(() => sniff[0]!.got.some((g) => g.subject.startsWith(`deliver.${A}.`)), { timeout: 20_000, what: "A's own mirror traffic (the marker)" });
    for (const s of sniff) expect(s.got.filter((g) => g.subject.includes(B) || g.id.includes("B-secret"))).toEqual([]);
  });

  it("A cannot write any key of the hub bucket", async () => {
    const before = await bucketSeq();
    const mirror = await new Kvm(an).open("gateway-config");
    for (const k of [`devices.${B}`, `devices.${A}`, "devices.new"]) {
      await expect(mirror.put(k, "{}", { timeout: 2000 } as never), k).rejects.toThrow();
    }
    const js = jetstream(an, { timeout: 2000 });
    await expect(js.publish(`$KV.gateway-config.devices.${B}`, "{}")).rejects.toThrow();
    await expect(an.request(`$JS.hub.API.$KV.gateway-config.devices.${B}`, "{}", { timeout: 2000 })).rejects.toThrow();
    // The target: the bucket's sequence did not move.
    expect(await bucketSeq()).toBe(before);
  });

  it("a leaf with no credential or a credential from another fleet is refused", async () => {
    const refused = () => env.hub.log().split("\n").filter((l) => /Leafnode connection closed: Authentication Failure/.test(l)).length;
    const start = refused();
    const none = await startLeaf("nocreds", env.hub.leafPort);
    cleanups.push(() => none.stop());
    await waitFor(() => refused() >= start + 2, { timeout: 30_000, what: "the leaf without credential refused twice" });
    await none.stop();
    const other = await testFleetKeys();
    const path = join(await tempDir(), "other.creds");
    await writeFile(path, await other.issueDevice(A));
    const forged = await startLeaf("other-fleet", env.hub.leafPort, { creds: path });
    cleanups.push(() => forged.stop());
    const mid = refused();
    await waitFor(() => refused() >= mid + 2, { timeout: 30_000, what: "the other fleet's credential refused twice" });
    expect(env.hub.log()).not.toMatch(/Leafnode connection created.*(nocreds|other-fleet)/);
    await forged.stop();
  }, 90_000);

  it("a leaf configured with domain B and A's credential cannot stand in for B", async () => {
    // Take the real B away so that any answer on $JS.B.API could only come from the impostor.
    await env.leaves[1]!.kill9();
    const impostor = await startLeaf("impostor", env.hub.leafPort, { creds: env.creds[0]!, domain: B });
    cleanups.push(() => impostor.stop());
    await waitFor(() => impostor.leafLinkUp() || undefined, { timeout: 20_000, what: "impostor link (A's credential is valid)" });
    const inc = await impostor.connect();
    cleanups.push(() => inc.close());
    const ijsm = await jetstreamManager(inc);
    await ijsm.streams.add({ name: "TELEMETRY", subjects: ["sensors.>"] });
    await jetstream(inc).publish(`sensors.temperature.eu-west.${B}.fake`, "{}");
    // What the hub routes to the impostor: B's API (must be nothing) and A's (its credential's own, the marker).
    const toB = collect(inc, `$JS.${B}.API.>`);
    const toA = collect(inc, `$JS.${A}.API.>`);
    await inc.flush();
    // The hub cannot reach $JS.B.API on the impostor…
    await expect((await jetstreamManager(hubNc, { domain: B, checkAPI: false, timeout: 2000 })).getAccountInfo()).rejects.toThrow();
    await waitFor(async () => {
      hubNc.publish(`$JS.${A}.API.MARKER`, "m");
      await hubNc.flush();
      return toA.got.length > 0;
    }, { what: "the marker on A's API at the impostor" });
    expect(toB.got).toEqual([]);
    // …so nothing of the impostor's reached the hub stream, and no source consumer was made there.
    expect((await ijsm.streams.info("TELEMETRY")).state.consumer_count).toBe(0);
    const fake = await (await jetstreamManager(hubNc)).streams.info("TELEMETRY", { subjects_filter: `sensors.*.*.${B}.fake` });
    expect(fake.state.subjects ?? {}).toEqual({});
  }, 90_000);
});
