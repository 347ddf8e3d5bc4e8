import { afterAll, afterEach, describe, expect, it } from "vitest";
import { access, rm } from "node:fs/promises";
import type { Daemon } from "../../src/daemon/daemon.js";
import { readConfigCache, writeConfigCache } from "../../src/config/remote.js";
import { ensureConfigBucket } from "../../src/bridge/remote-config-bucket.js";
import { cleanupNats, waitForLeafLink } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { bootstrap, gaps, KEY, Observer, sim, startDaemon, startEnv, type Env } from "./setup.js";

let env: Env | undefined;
const daemons: Daemon[] = [];
const extraClose: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  await Promise.all(extraClose.splice(0).map((c) => c().catch(() => undefined)));
  await env?.close();
  env = undefined;
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

const exists = (f: string) => access(f).then(() => true, () => false);
const ids = (d: Daemon) => d.sensors().map((r) => r.config.id).sort();

describe("remote config › boot order: mirror → cache → bootstrap", () => {
  it("with the hub killed -9, a restarted daemon runs the config from the leaf's mirror (cache removed)", async () => {
    env = await startEnv();
    const { obs, kv, net } = env;
    const b = await bootstrap(net.leaves[0]!.url);
    const first = await startDaemon({ config: b.cfg });
    daemons.push(first);
    const r = await kv.put(KEY, JSON.stringify({ sensors: [sim("gamma")] }));
    await obs.event(r);
    await obs.more("gamma", 3);
    await first.stop();
    // Prove it is the mirror, not the cache, that the next boot uses.
    await rm(b.cache);
    await net.hub.kill9();

    const startedAt = Date.now();
    const second = await startDaemon({ config: b.cfg });
    daemons.push(second);
    const bootMs = Date.now() - startedAt;
    expect(second.configSource).toBe("mirror");
    expect(second.configRevision).toBe(r);
    expect(ids(second)).toEqual(["gamma"]);
    const alphaBefore = obs.count("alpha");
    await obs.more("gamma", 5);
    // gamma's seq continued across the restart; the bootstrap sensors never came back.
    expect(gaps(obs.seqs.get("gamma")!)).toEqual([]);
    expect(obs.count("alpha")).toBe(alphaBefore);
    // And the mirror's document is the last-known-good cache again.
    expect(await readConfigCache(b.cache)).toMatchObject({ ok: true, revision: r });
    console.log(`boot from the mirror with the hub down: Daemon.start took ${bootMs} ms`);
  });

  it("with the leaf's KV empty, runs the cache file; then follows the mirror when a document arrives; a deleted key goes back to the bootstrap file", async () => {
    env = await startEnv();
    const { obs, kv, net } = env;
    const b = await bootstrap(net.leaves[0]!.url);
    await writeConfigCache(b.cache, 7, { sensors: [sim("cached")] });
    const daemon = await startDaemon({ config: b.cfg });
    daemons.push(daemon);
    expect(daemon.configSource).toBe("cache");
    expect(daemon.configRevision).toBe(7);
    expect(ids(daemon)).toEqual(["cached"]);
    await obs.more("cached", 5);
    expect(obs.count("alpha")).toBe(0);

    const r = await kv.put(KEY, JSON.stringify({ sensors: [sim("cached"), sim("fresh")] }));
    expect(await obs.event(r)).toMatchObject({ status: "applied", started: ["fresh"], restarted: [], stopped: [] });
    expect(daemon.configSource).toBe("mirror");
    await obs.more("fresh", 3);
    expect(gaps(obs.seqs.get("cached")!)).toEqual([]);
    expect(await readConfigCache(b.cache)).toMatchObject({ ok: true, revision: r });

    await kv.delete(KEY);
    const deleted = await waitFor(() => obs.events.find((e) => e.revision > r), { what: "event for the delete" });
    expect(deleted).toMatchObject({ status: "applied", source: "bootstrap" });
    expect(deleted.stopped!.sort()).toEqual(["cached", "fresh"]);
    expect(daemon.configSource).toBe("bootstrap");
    expect(ids(daemon)).toEqual(["alpha", "beta"]);
    expect(await exists(b.cache)).toBe(false);
    await obs.more("alpha", 3);
  });

  it("with an invalid latest revision in the mirror, boots from the cache and reports the rejection", async () => {
    env = await startEnv();
    const { obs, kv, net } = env;
    const b = await bootstrap(net.leaves[0]!.url);
    const good = { sensors: [sim("cached")] };
    const r0 = await kv.put(KEY, JSON.stringify(good));
    await writeConfigCache(b.cache, r0, good);
    const bad = await kv.put(KEY, JSON.stringify({ sensors: [{ ...sim("x"), interval: "often" }] }));
    const daemon = await startDaemon({ config: b.cfg });
    daemons.push(daemon);
    expect(daemon.configSource).toBe("cache");
    expect(daemon.configRevision).toBe(r0);
    expect(await obs.event(bad)).toMatchObject({ status: "rejected", errors: [{ path: "sensors[0].interval" }] });
    await obs.more("cached", 3);
  });

  it("does not wait for an unreachable leaf: starts from the cache, then switches to the mirror once the leaf is back", async () => {
    env = await startEnv();
    const { kv, net } = env;
    const leaf = net.leaves[0]!;
    const b = await bootstrap(leaf.url);
    // The device last applied r0 (its cache); the KV moved on to r while it was off.
    const cachedDoc = { sensors: [sim("cached")] };
    const r0 = await kv.put(KEY, JSON.stringify(cachedDoc));
    await writeConfigCache(b.cache, r0, cachedDoc);
    const r = await kv.put(KEY, JSON.stringify({ sensors: [sim("fromkv")] }));
    await leaf.kill9();

    const startedAt = Date.now();
    const daemon = await startDaemon({ config: b.cfg, remoteBootWaitMs: 500 });
    daemons.push(daemon);
    const bootMs = Date.now() - startedAt;
    // start() returned while the leaf was still unreachable: it did not wait for it.
    expect(daemon.connection).toBeUndefined();
    expect(daemon.configSource).toBe("cache");
    expect(ids(daemon)).toEqual(["cached"]);
    // Readings are produced (and queued) while the leaf is down.
    await waitFor(() => daemon.publisher.stats.accepted >= 5, { what: "readings queued while the leaf is down" });

    await leaf.restart();
    await waitForLeafLink(leaf);
    const nc = await leaf.connect();
    extraClose.push(() => nc.close());
    const obs = new Observer(nc);
    await waitFor(() => daemon.configSource === "mirror", { timeout: 45_000, what: "the daemon to switch to the mirror" });
    expect(daemon.configRevision).toBe(r);
    expect(ids(daemon)).toEqual(["fromkv"]);
    await obs.more("fromkv", 3);
    console.log(`boot with the leaf down: Daemon.start took ${bootMs} ms`);
  });

  it("keeps following after the leaf is killed -9 and restarted under a running daemon", async () => {
    env = await startEnv();
    const { kv, net } = env;
    const leaf = net.leaves[0]!;
    const b = await bootstrap(leaf.url);
    const daemon = await startDaemon({ config: b.cfg });
    daemons.push(daemon);
    const r1 = await kv.put(KEY, JSON.stringify({ sensors: [sim("one")] }));
    await waitFor(() => daemon.configRevision === r1, { what: "first revision applied" });

    await leaf.kill9();
    await leaf.restart();
    await waitForLeafLink(leaf);
    const nc = await leaf.connect();
    extraClose.push(() => nc.close());
    const obs = new Observer(nc);
    const r2 = await kv.put(KEY, JSON.stringify({ sensors: [sim("one"), sim("two")] }));
    expect(await obs.event(r2, 45_000)).toMatchObject({ status: "applied", started: ["two"] });
    expect(ids(daemon)).toEqual(["one", "two"]);
    await obs.more("two", 3);
  });

  it("after the hub was killed -9 and restarted, a new push still reaches the running daemon", async () => {
    env = await startEnv();
    const { obs, net } = env;
    const b = await bootstrap(net.leaves[0]!.url);
    const daemon = await startDaemon({ config: b.cfg });
    daemons.push(daemon);
    const r1 = await env.kv.put(KEY, JSON.stringify({ sensors: [sim("one")] }));
    await obs.event(r1);

    await net.hub.kill9();
    await net.hub.restart();
    await waitForLeafLink(net.leaves[0]!);
    const hubNc = await net.hub.connect();
    extraClose.push(() => hubNc.close());
    const kv = await ensureConfigBucket(hubNc);
    const putAt = Date.now();
    const r2 = await kv.put(KEY, JSON.stringify({ sensors: [sim("one"), sim("two")] }));
    expect(r2).toBeGreaterThan(r1);
    // Mirrors resume 10–30 s after a reconnect on 2.9.10 (DESIGN Part C).
    expect(await obs.event(r2, 45_000)).toMatchObject({ status: "applied", started: ["two"] });
    console.log(`hub restarted: push → applied on the device after ${Date.now() - putAt} ms`);
  });
});
