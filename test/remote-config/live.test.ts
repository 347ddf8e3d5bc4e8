import { afterAll, afterEach, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Daemon } from "../../src/daemon/daemon.js";
import { readConfigCache } from "../../src/config/remote.js";
import { cleanupNats } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, tempDir } from "../helpers/procs.js";
import { runCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { bootstrap, gaps, KEY, sim, startDaemon, startEnv, DEVICE, type Env } from "./setup.js";

let env: Env | undefined;
const daemons: Daemon[] = [];
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  await env?.close();
  env = undefined;
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

async function setup(opts: Parameters<typeof startDaemon>[0] extends infer O ? Partial<O> : never = {}, bucket: { maxValueSize?: number } = {}) {
  env = await startEnv(bucket);
  const b = await bootstrap(env.net.leaves[0]!.url);
  const daemon = await startDaemon({ config: b.cfg, ...opts });
  daemons.push(daemon);
  await env.obs.more("alpha", 3);
  await env.obs.more("beta", 3);
  return { env, daemon, ...b };
}

describe("remote config › applied live as a difference", () => {
  it("a pushed new sensor publishes within seconds; changing its interval restarts only it; removing it stops its readings", async () => {
    const { env, daemon, cache } = await setup();
    const { obs, kv } = env;
    expect(daemon.configSource).toBe("bootstrap");
    const runnersBefore = new Map(daemon.sensors().map((r) => [r.config.id, r]));

    // 1. Push through the CLI: a new sensor.
    const dir = await tempDir("egw-rc-doc-");
    const file = join(dir, "doc.json");
    await writeFile(file, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), sim("gamma")] }));
    const pushedAt = Date.now();
    const push = await runCli(["config", "push", DEVICE, file, "--server", env.net.hub.url]);
    expect(push.code).toBe(0);
    const r1 = Number(/revision (\d+)/.exec(push.stdout)![1]);
    const e1 = await obs.event(r1);
    expect(e1).toMatchObject({ status: "applied", changed: ["gamma"], started: ["gamma"], restarted: [], stopped: [] });
    await obs.more("gamma", 3);
    const latency = Date.now() - pushedAt;
    expect(daemon.configRevision).toBe(r1);
    expect(daemon.configSource).toBe("mirror");
    // The applied document is the last-known-good cache.
    expect(await readConfigCache(cache)).toMatchObject({ ok: true, revision: r1 });

    // 2. Change gamma's interval: only gamma restarts.
    const putAt = Date.now();
    const r2 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), sim("gamma", "100ms")] }));
    const e2 = await obs.event(r2);
    const applyMs = Date.now() - putAt;
    expect(e2).toMatchObject({ status: "applied", changed: ["gamma"], restarted: ["gamma"], started: [], stopped: [] });
    await obs.more("gamma", 3);
    const after = new Map(daemon.sensors().map((r) => [r.config.id, r]));
    expect(after.get("alpha")).toBe(runnersBefore.get("alpha"));
    expect(after.get("beta")).toBe(runnersBefore.get("beta"));
    expect(after.get("gamma")!.config.interval).toBe(100);

    // 3. Remove gamma: its readings stop, the others go on.
    const r3 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta")] }));
    expect(await obs.event(r3)).toMatchObject({ status: "applied", changed: ["gamma"], stopped: ["gamma"] });
    await obs.more("alpha", 5); // anything gamma published before it stopped has arrived by now
    const gammaCount = obs.count("gamma");
    await obs.more("alpha", 10);
    expect(obs.count("gamma")).toBe(gammaCount);
    expect(daemon.sensors().map((r) => r.config.id).sort()).toEqual(["alpha", "beta"]);

    // Across all three changes, alpha's and beta's seq streams never broke.
    expect(gaps(obs.seqs.get("alpha")!)).toEqual([]);
    expect(gaps(obs.seqs.get("beta")!)).toEqual([]);
    // gamma's seq went on across its restart too (persisted per sensor).
    expect(gaps(obs.seqs.get("gamma")!)).toEqual([]);
    console.log(`CLI push (incl. tsx start-up) → first readings of the new sensor: ${latency} ms; hub put → applied event: ${applyMs} ms`);
  });

  it("an invalid document written straight into the KV is rejected naming each bad path; the sensors keep publishing", async () => {
    const { env, daemon } = await setup();
    const { obs, kv } = env;
    const r0 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta")] }));
    await obs.event(r0);
    const runners = daemon.sensors();

    const bad = {
      sensors: [
        sim("alpha"),
        { id: "bad id", type: "temperature", driver: "simulated", interval: "soon" },
        { id: "c", type: "temperature", driver: "warp-drive" },
      ],
      log: { level: "loud" },
      colour: "blue",
    };
    const r1 = await kv.put(KEY, JSON.stringify(bad));
    const e = await obs.event(r1);
    expect(e.status).toBe("rejected");
    const paths = e.errors!.map((p) => p.path).sort();
    expect(paths).toEqual(["", "log.level", "sensors[1].id", "sensors[1].interval", "sensors[2].driver"].sort());
    expect(e.errors!.find((p) => p.path === "sensors[2].driver")!.message).toMatch(/unknown driver "warp-drive"/);
    expect(e.errors!.find((p) => p.path === "")!.message).toMatch(/unknown key "colour"/);

    // Nothing changed: same revision, same runners, readings go on without a gap.
    expect(daemon.configRevision).toBe(r0);
    await obs.more("alpha", 5);
    await obs.more("beta", 5);
    // The very same runner objects: none was restarted.
    expect(daemon.sensors().length).toBe(runners.length);
    daemon.sensors().forEach((r, i) => expect(r).toBe(runners[i]));
    expect(gaps(obs.seqs.get("alpha")!)).toEqual([]);
    expect(gaps(obs.seqs.get("beta")!)).toEqual([]);

    // Duplicate ids are named too.
    const rDup = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), sim("alpha")] }));
    const eDup = await obs.event(rDup);
    expect(eDup).toMatchObject({ status: "rejected", errors: [{ path: "sensors[2].id" }] });
    expect(eDup.errors![0]!.message).toMatch(/duplicate id "alpha" \(also sensors\[0\]\)/);
    expect(daemon.configRevision).toBe(r0);

    // A valid document after the rejections is applied normally.
    const r2 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha")] }));
    expect(await obs.event(r2)).toMatchObject({ status: "applied", stopped: ["beta"] });
  });

  it("a document that is not JSON, or larger than the limit, is rejected with a clear error; the daemon is unaffected", async () => {
    const { env, daemon } = await setup({ maxDocumentBytes: 2048 }, { maxValueSize: 8192 });
    const { obs, kv } = env;
    const r0 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta")] }));
    await obs.event(r0);

    const r1 = await kv.put(KEY, "sensors: [this is yaml, not json]");
    const e1 = await obs.event(r1);
    expect(e1.status).toBe("rejected");
    expect(e1.errors).toHaveLength(1);
    expect(e1.errors![0]!.message).toMatch(/^not a JSON document \(.+\): write it with `edge-gateway config push`/);

    const r2 = await kv.put(KEY, "[1, 2]");
    expect((await obs.event(r2)).errors![0]!.message).toMatch(/must be a JSON object/);

    // Bigger than the daemon's limit (2 KiB here) but within the bucket's.
    const many = Array.from({ length: 40 }, (_, i) => ({ ...sim(`padding-${i}`), enabled: false }));
    const big = JSON.stringify({ sensors: [sim("alpha"), sim("beta"), ...many] });
    expect(big.length).toBeGreaterThan(2048);
    const r3 = await kv.put(KEY, big);
    const e3 = await obs.event(r3);
    expect(e3.status).toBe("rejected");
    expect(e3.errors![0]!.message).toMatch(new RegExp(`document is ${big.length} bytes, more than the 2048-byte limit`));

    // Bigger than the bucket's max value size: the hub refuses it, the device never sees it.
    await expect(kv.put(KEY, "x".repeat(9000))).rejects.toThrow(/maximum|size/i);

    expect(daemon.configRevision).toBe(r0);
    await obs.more("alpha", 5);
    await obs.more("beta", 5);
    expect(gaps(obs.seqs.get("alpha")!)).toEqual([]);
    expect(gaps(obs.seqs.get("beta")!)).toEqual([]);
  });

  it("a log.level change applies without restarting any sensor, also to loggers made before it", async () => {
    const lines: { level: number; msg: string; sensor?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
        done();
      },
    });
    const logger = pino({ level: "warn" }, sink);
    const { env, daemon } = await setup({ logger });
    const { obs, kv } = env;
    expect(daemon.logLevel).toBe("warn");
    const runners = daemon.sensors();

    const r1 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta")], log: { level: "debug" } }));
    expect(await obs.event(r1)).toMatchObject({ status: "applied", changed: [] });
    expect(daemon.logLevel).toBe("debug");
    // The very same runner objects: none was restarted.
    expect(daemon.sensors().length).toBe(runners.length);
    daemon.sensors().forEach((r, i) => expect(r).toBe(runners[i]));

    // A logger made after the change logs at debug…
    const r2 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), sim("gamma")], log: { level: "debug" } }));
    await obs.event(r2);
    await waitFor(() => lines.find((l) => l.msg === "sensor started" && l.sensor === "gamma"), { what: "debug line from the new sensor's logger" });
    // …and the daemon's own logger, made at boot, logs info now (it was at warn).
    expect(lines.some((l) => l.level === 30 && l.msg === "remote config applied")).toBe(true);

    // Back to error: no more info lines, still no sensor restarted.
    const r3 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), sim("gamma")], log: { level: "error" } }));
    expect(await obs.event(r3)).toMatchObject({ status: "applied", changed: [] });
    const n = lines.length;
    const r4 = await kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta")], log: { level: "error" } }));
    expect(await obs.event(r4)).toMatchObject({ status: "applied", stopped: ["gamma"] });
    expect(lines.slice(n).filter((l) => l.level < 50)).toEqual([]);
    expect(gaps(obs.seqs.get("alpha")!)).toEqual([]);
    expect(gaps(obs.seqs.get("beta")!)).toEqual([]);
  });
});
