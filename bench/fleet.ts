/**
 * `npm run bench:fleet -- --devices N [--outage 60s] [--registrations 1000] [--shells 8]`
 * `npm run bench:fleet -- --register-only [--registrations 1000] [--shells 8] [--rounds R] [--cli BIN] [--compare BIN] [--no-live]`
 *
 * A fleet on a real 3-node hub cluster (JetStream domain hub, R3 stream, bucket and registry):
 * N real leaf nats-servers (one process each, linked to every hub node), and N daemons — all in
 * THIS process (one Node.js heap, each daemon with its own NATS connection to its own leaf,
 * one simulated sensor at 1 reading/s), because N separate Node processes do not fit two cores.
 * Reports:
 * 1. per-device RSS: the bench process's RSS / N (daemons), and the leaves' mean RSS (/proc);
 * 2. hub monitoring load in steady state: JetStream API requests/s on the hub (sum of the
 *    nodes' /jsz api.total deltas) and leaf↔hub messages and bytes/s (sum of /leafz), next to
 *    the readings/s they carry;
 * 3. a single-node kill: leaves on that node, "uplink down" events per device (false alarms =
 *    devices not on that node), config put+get while it is down;
 * 4. a full-cluster outage of --outage: time from restart until the hub holds every reading;
 * 5. exactly-once: every reading of every device read back from the hub: lost, duplicated;
 * 6. registration: --registrations ids registered by --shells concurrent CLI processes (a fresh
 *    cluster set up with `cloud init --replicas 3`), wall time and how many ended in the registry,
 *    the sources and the live streams' subjects.
 *
 * `--register-only` runs only step 6 (no leaves, no daemons), `--rounds` times. `--compare BIN`
 * also runs it with another `edge-gateway` launcher (`--cli` replaces this checkout's) (e.g. bin/edge-gateway.js of a checkout of an
 * earlier commit, built), alternating with this one on fresh clusters: before/after side by side.
 * `--no-live` sets the cluster up without the LATEST/EVENTS live streams (as the first version
 * of this bench did) instead of with `cloud init`.
 */
import { readFile, readdir } from "node:fs/promises";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { ensureHubConfigBucket, listDevices } from "../src/cloud/hub.js";
import { LIVE_STREAMS } from "../src/cloud/live.js";
import { ensureFleet, registerDevices, registeredDevices, shardStreams } from "../src/cloud/fleet.js";
import { validateBootstrap } from "../src/config/load.js";
import { Daemon } from "../src/daemon/daemon.js";
import { silentLogger } from "../src/logger.js";
import { cleanupNats, leafNodeOf, startHubCluster, startLeaf, waitForJetStreamCluster, waitForLeafLink, type HubCluster, type NatsServer } from "../test/helpers/nats.js";
import { cleanupTempDirs, startProc, tempDir } from "../test/helpers/procs.js";
import { waitFor } from "../test/helpers/wait.js";

function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}
const N = Number(flag("devices", "30"));
const OUTAGE_MS = Number(/^(\d+)s$/.exec(flag("outage", "60s"))?.[1] ?? 60) * 1000;
const REGISTRATIONS = Number(flag("registrations", "1000"));
const SHELLS = Number(flag("shells", "8"));
const REGISTER_ONLY = process.argv.includes("--register-only");
const ROUNDS = Number(flag("rounds", "1"));
const COMPARE = flag("compare", "");
const NO_LIVE = process.argv.includes("--no-live");
const STEADY_MS = Number(/^(\d+)s$/.exec(flag("steady", "30s"))?.[1] ?? 30) * 1000;
const bin = flag("cli", "") || fileURLToPath(new URL("../bin/edge-gateway.js", import.meta.url));
const log = (s: string) => process.stdout.write(`${s}\n`);
const ids = Array.from({ length: N }, (_, i) => `dev-${String(i).padStart(4, "0")}`);

async function json<T>(port: number, path: string): Promise<T> {
  return (await (await fetch(`http://127.0.0.1:${port}${path}`)).json()) as T;
}

interface HubCounters {
  api: number;
  leafInMsgs: number;
  leafOutMsgs: number;
  leafInBytes: number;
  leafOutBytes: number;
}
async function hubCounters(c: HubCluster): Promise<HubCounters> {
  const out: HubCounters = { api: 0, leafInMsgs: 0, leafOutMsgs: 0, leafInBytes: 0, leafOutBytes: 0 };
  for (const [i, n] of c.nodes.entries()) {
    if (!n.running) continue;
    const j = await json<{ api?: { total?: number } }>(c.monitorPorts[i]!, "/jsz");
    out.api += j.api?.total ?? 0;
    const l = await json<{ leafs?: { in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number }[] }>(c.monitorPorts[i]!, "/leafz");
    for (const x of l.leafs ?? []) {
      out.leafInMsgs += x.in_msgs;
      out.leafOutMsgs += x.out_msgs;
      out.leafInBytes += x.in_bytes;
      out.leafOutBytes += x.out_bytes;
    }
  }
  return out;
}

async function rssOfDirs(leaves: NatsServer[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = await readFile(`/proc/${p}/cmdline`, "utf8");
      if (!leaves.some((l) => cmd.includes(l.dir))) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${p}/status`, "utf8"));
      if (m) out.push(Number(m[1]) * 1024);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function hubTotal(nc: NatsConnection, streams: string[]): Promise<number> {
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  let n = 0;
  for (const s of streams) n += (await jsm.streams.info(s)).state.messages;
  return n;
}

async function leafTotal(leafNcs: NatsConnection[]): Promise<number> {
  let n = 0;
  for (const nc of leafNcs) n += (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;
  return n;
}

/** Every msg id in the hub streams, read with ordered consumers. */
async function hubMsgIds(nc: NatsConnection, streams: string[]): Promise<string[]> {
  const idsOut: string[] = [];
  const js = jetstream(nc, { timeout: 20_000 });
  for (const s of streams) {
    const c = await js.consumers.get(s);
    const total = (await (await jetstreamManager(nc)).streams.info(s)).state.messages;
    let got = 0;
    for (let empty = 0; got < total && empty < 5; ) {
      const batch = await c.fetch({ max_messages: 1000, expires: 5000 });
      let n = 0;
      for await (const m of batch) {
        idsOut.push(m.headers?.get("Nats-Msg-Id") ?? "");
        n++;
      }
      got += n;
      empty = n === 0 ? empty + 1 : 0;
    }
  }
  return idsOut;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  log(`# bench:fleet — ${N} devices (leaf nats-server each; daemons in this process), 3-node hub cluster, ${new Date().toISOString()}`);
  const c = await startHubCluster();
  const nc = await c.connect();
  await ensureFleet(nc, { replicas: 3 });
  await ensureHubConfigBucket(nc, { replicas: 3 });
  const streams = shardStreams({ stream: "TELEMETRY", shards: 1 });
  let t = Date.now();
  await registerDevices(nc, ids);
  log(`registration of the ${N} bench devices (one bulk call): ${Date.now() - t} ms`);

  t = Date.now();
  const leaves: NatsServer[] = [];
  for (let i = 0; i < N; i += 10) leaves.push(...(await Promise.all(ids.slice(i, i + 10).map((id) => startLeaf(id, c.leafPorts)))));
  await Promise.all(leaves.map((l) => waitForLeafLink(l, 60_000)));
  log(`${N} leaves up and linked: ${Date.now() - t} ms; spread over nodes: ${[0, 1, 2].map((k) => leaves.filter((l) => leafNodeOf(c, l) === k).length).join("/")}`);

  const rss0 = process.memoryUsage().rss;
  const daemons: Daemon[] = [];
  const downEvents = new Map<string, number>();
  for (const [i, id] of ids.entries()) {
    const v = validateBootstrap({
      device: { id, region: "bench" },
      nats: { servers: [leaves[i]!.url] },
      remoteConfig: false,
      http: false,
      state: await tempDir("egw-fleet-state-"),
      sensors: [{ id: "s", type: "temperature", driver: "simulated", interval: "1s", unit: "Cel" }],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const d = await Daemon.start({ config: v.value, logger: silentLogger(), linkCheckMs: 5000 });
    daemons.push(d);
  }
  // Counts each daemon's up → down transitions (its state holds for ≥ one 5 s check: a 250 ms poll sees all).
  const lastHub = new Map<string, string>();
  const poll = setInterval(() => {
    for (const [i, d] of daemons.entries()) {
      const id = ids[i]!;
      if (d.link.hub === "down" && lastHub.get(id) === "up") downEvents.set(id, (downEvents.get(id) ?? 0) + 1);
      lastHub.set(id, d.link.hub);
    }
  }, 250);
  const leafNcs = await Promise.all(leaves.map((l) => connect({ servers: l.url })));
  await waitFor(() => daemons.every((d) => d.link.hub === "up" && d.link.sourcing === "active"), { timeout: 300_000, interval: 500, what: "every daemon linked and sourced" });
  const rssDaemons = process.memoryUsage().rss - rss0;
  const leafRss = await rssOfDirs(leaves);
  log(`daemons up and sourced after ${Date.now() - t0} ms; RSS per daemon (in-process share) ${(rssDaemons / N / 1048576).toFixed(1)} MiB; leaf nats-server RSS mean ${(leafRss.reduce((a, b) => a + b, 0) / Math.max(1, leafRss.length) / 1048576).toFixed(1)} MiB`);

  // Steady state.
  const cpu0 = process.cpuUsage();
  const a = await hubCounters(c);
  const ta = Date.now();
  await new Promise((r) => setTimeout(r, STEADY_MS));
  const b = await hubCounters(c);
  const secs = (Date.now() - ta) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const readingsPerS = N; // one sensor at 1/s per device
  log(`steady state over ${secs.toFixed(0)} s: hub JetStream API requests ${((b.api - a.api) / secs).toFixed(2)}/s in total (${((b.api - a.api) / secs / N).toFixed(4)}/s per device)`);
  log(`  leaf→hub ${((b.leafInMsgs - a.leafInMsgs) / secs).toFixed(1)} msg/s, ${((b.leafInBytes - a.leafInBytes) / secs / 1024).toFixed(1)} KiB/s; hub→leaf ${((b.leafOutMsgs - a.leafOutMsgs) / secs).toFixed(1)} msg/s, ${((b.leafOutBytes - a.leafOutBytes) / secs / 1024).toFixed(1)} KiB/s; readings ${readingsPerS}/s`);
  log(`  daemons' CPU (this process) ${(((cpu.user + cpu.system) / 1e6 / secs / N) * 100).toFixed(2)} % of a core per device`);

  // Single-node kill.
  const cfg = await new Kvm(jetstream(nc, { timeout: 10_000 })).open("gateway-config");
  const victim = 0;
  const onVictim = new Set(leaves.filter((l) => leafNodeOf(c, l) === victim).map((l) => l.name));
  downEvents.clear();
  await c.nodes[victim]!.kill9();
  t = Date.now();
  const rev = await waitFor(() => cfg.put("devices.dev-0000", JSON.stringify({ sensors: [] })), { timeout: 60_000, interval: 250, what: "config write with a node down" });
  const readBack = (await cfg.get("devices.dev-0000"))?.revision === rev;
  log(`single-node kill (node ${victim}, ${onVictim.size} leaves on it): config put+get ok=${readBack} after ${Date.now() - t} ms`);
  await waitFor(() => leaves.every((l) => leafNodeOf(c, l) >= 0 && leafNodeOf(c, l) !== victim), { timeout: 120_000, interval: 500, what: "leaves moved off the killed node" });
  await new Promise((r) => setTimeout(r, 12_000)); // let every monitor (5 s) see the state
  const falseAlarms = [...downEvents.keys()].filter((id) => !onVictim.has(id)).length;
  const trueAlarms = [...downEvents.keys()].filter((id) => onVictim.has(id)).length;
  log(`  "uplink down" on ${trueAlarms} of ${onVictim.size} devices whose leaf was on it; false alarms (other devices): ${falseAlarms}; leaves re-linked to the other nodes in ${Date.now() - t} ms or less`);
  await c.nodes[victim]!.restart();
  await waitForJetStreamCluster(c);

  // Full outage.
  await waitFor(async () => (await hubTotal(nc, streams)) >= (await leafTotal(leafNcs)), { timeout: 120_000, interval: 1000, what: "hub caught up before the outage" });
  for (const n of c.nodes) await n.kill9();
  log(`full-cluster outage: all 3 nodes killed for ${OUTAGE_MS / 1000} s`);
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  for (const n of c.nodes) void n.restart();
  t = Date.now();
  await waitFor(() => c.nodes.every((n) => n.running), { timeout: 30_000, what: "nodes restarted" });
  await waitForJetStreamCluster(c, 60_000);
  const target = await leafTotal(leafNcs);
  await waitFor(async () => (await hubTotal(nc, streams).catch(() => 0)) >= target, { timeout: 300_000, interval: 500, what: "hub holds every reading buffered during the outage" });
  log(`  recovery: the hub held all ${target} readings ${Date.now() - t} ms after the restart`);

  // Exactly-once.
  clearInterval(poll);
  await Promise.all(daemons.map((d) => d.stop()));
  const final = await leafTotal(leafNcs);
  t = Date.now();
  const caughtUp = await waitFor(async () => (await hubTotal(nc, streams)) >= final, { timeout: 180_000, interval: 500, what: "hub holds the final readings" }).then(
    () => true,
    () => false,
  );
  if (!caughtUp) log(`  the hub did NOT reach the leaves' ${final} readings within 180 s after the daemons stopped (hub ${await hubTotal(nc, streams)}); reading back what it holds`);
  else log(`  the hub held the leaves' final ${final} readings ${Date.now() - t} ms after the daemons stopped`);
  const hubIds = await hubMsgIds(nc, streams);
  const distinct = new Set(hubIds);
  const stored = await hubTotal(nc, streams);
  log(`exactly-once: leaves hold ${final} readings; hub streams hold ${stored}; read back ${hubIds.length} messages, ${distinct.size} distinct ids: lost ${final - distinct.size}, duplicated ${hubIds.length - distinct.size}`);
  // Per device: the leaf's count against the distinct ids the hub holds for it, and, where they
  // differ, what the hub says about that device's source.
  const sources = new Map((await listDevices(nc, { streams }).catch(() => [])).map((d) => [d.device, d]));
  for (const [i, id] of ids.entries()) {
    const leafN = (await (await jetstreamManager(leafNcs[i]!)).streams.info("TELEMETRY")).state.messages;
    const hubN = [...distinct].filter((m) => m.startsWith(`${id}.`)).length;
    if (leafN === hubN) continue;
    const src = sources.get(id);
    log(`  ${id}: leaf ${leafN}, hub ${hubN}; hub source lag ${src?.lag ?? "?"}, last active ${src?.lastActiveMs === undefined ? "never" : `${(src.lastActiveMs / 1000).toFixed(1)} s ago`}${src?.error ? `, error ${src.error}` : ""}`);
  }
  await Promise.all(leafNcs.map((x) => x.close()));
  await nc.close();
  await c.stop();
  await Promise.all(leaves.map((l) => l.stop()));

  if (REGISTRATIONS > 0) log(await registration(bin, "this checkout"));
}

/**
 * `--registrations` ids registered by `--shells` concurrent `cloud add-device` processes of the
 * launcher `cli`, on a fresh 3-node cluster set up by that launcher's `cloud init --replicas 3`.
 */
async function registration(cli: string, label: string): Promise<string> {
  const c = await startHubCluster();
  try {
    const servers = c.urls.join(",");
    if (NO_LIVE) {
      // As the first fleet bench did: registry, stream and config bucket, no LATEST/EVENTS.
      const setup = await c.connect();
      await ensureFleet(setup, { replicas: 3 });
      await ensureHubConfigBucket(setup, { replicas: 3 });
      await setup.close();
    } else {
      const init = startProc(process.execPath, [cli, "cloud", "init", "--replicas", "3", "--server", servers]);
      if ((await init.exited) !== 0) throw new Error(`cloud init (${label}) failed: ${init.stderr()}`);
    }
    const per = Math.ceil(REGISTRATIONS / SHELLS);
    const load = loadavg()[0]!.toFixed(1);
    const t = Date.now();
    const procs = Array.from({ length: SHELLS }, (_, s) =>
      startProc(process.execPath, [cli, "cloud", "add-device", ...Array.from({ length: Math.max(0, Math.min(per, REGISTRATIONS - s * per)) }, (_, i) => `reg-${s}-${i}`), "--server", servers]),
    );
    const ends: number[] = [];
    const codes = await Promise.all(procs.map((p) => p.exited.then((code) => (ends.push(Date.now() - t), code))));
    const took = Date.now() - t;
    const nc = await c.connect();
    try {
      const registered = (await registeredDevices(nc)).length;
      const sourced = (await listDevices(nc)).length;
      const jsm = await jetstreamManager(nc, { timeout: 20_000 });
      const live = NO_LIVE ? ["-"] : await Promise.all(Object.values(LIVE_STREAMS).map(async (s) => (await jsm.streams.info(s)).config.subjects?.filter((x) => !x.startsWith("_egw.")).length ?? 0));
      const failed = procs.filter((_, i) => codes[i] !== 0).map((p) => p.stderr().trim().split("\n").at(-1));
      return `registration (${label}): ${REGISTRATIONS} devices from ${SHELLS} concurrent CLI processes in ${took} ms (processes ended at ${ends.sort((a, b) => a - b).map((x) => (x / 1000).toFixed(1)).join("/")} s; load average ${load} at start); exit codes ${[...new Set(codes)].join(",")}; registry ${registered}, sources ${sourced}, live subjects ${live.join("/")}${failed.length ? `; errors: ${failed.join(" | ")}` : ""}`;
    } finally {
      await nc.close();
    }
  } finally {
    await c.stop();
  }
}

async function registerOnly(): Promise<void> {
  log(`# bench:fleet --register-only${NO_LIVE ? " --no-live" : ""} — ${REGISTRATIONS} devices from ${SHELLS} CLI processes, 3-node hub cluster (R3), ${ROUNDS} round(s), ${new Date().toISOString()}, load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so neither always meets the machine in the same state.
    const variants: [string, string][] = COMPARE ? [[bin, "this checkout"], [COMPARE, `compare ${COMPARE}`]] : [[bin, "this checkout"]];
    if (r % 2 === 1) variants.reverse();
    for (const [cli, label] of variants) log(await registration(cli, label));
  }
}

try {
  await (REGISTER_ONLY ? registerOnly() : main());
} finally {
  await cleanupNats();
  await cleanupTempDirs();
  // Daemons' timers may linger after their connections closed.
  setTimeout(() => process.exit(0), 1000).unref();
}
