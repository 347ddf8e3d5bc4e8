/**
 * The chaos suite's world: real processes on loopback. A hub nats-server (domain `hub`), a leaf
 * nats-server (JetStream domain = device id) linked to it through a TCP proxy, the real daemon
 * (`bin/edge-gateway.js run --config …`, built dist/) with simulated sensors, a core subscriber
 * on the leaf's `sensors.>` that sees every publish attempt, and a /metrics scraper per daemon
 * process. Each part can be faulted and recovered; `close()` removes every process and dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { addDevice, ensureHubStream } from "../../src/cloud/hub.js";
import { renderLeafConfig } from "../../src/config/leaf-config.js";
import { validateBootstrap } from "../../src/config/load.js";
import { NatsServerProcess, renderServerConfig } from "../../src/demo/nats-server.js";
import { TcpProxy } from "../../src/demo/tcp-proxy.js";
import type { DaemonRun, StoredMsg } from "./analyse.js";
import { parseMsgId } from "./analyse.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const DEVICE = "chaos-pi";

export interface WorldOptions {
  sensors: number;
  intervalMs: number;
  /** Keep the working directory (logs, stores) after close. */
  keep: boolean;
  log: (s: string) => void;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`chaos: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Daemon processes still running: killed if this process exits without stopping them. */
const daemons = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of daemons) c.kill("SIGKILL");
});

/** One daemon process and what it said about itself. */
class DaemonProc {
  readonly run: DaemonRun;
  readonly exited: Promise<void>;
  /** Resolves once the daemon logged that it started (or exited). */
  readonly ready: Promise<void>;
  private onReady!: () => void;
  private readonly child: ChildProcess;
  private scraper?: NodeJS.Timeout;
  private tail = "";

  constructor(configFile: string, private readonly metricsUrl: string, logFile: WriteStream) {
    this.run = { startedAt: Date.now(), end: "running", exact: false, accepted: 0, published: 0, duplicates: 0, dropped: 0, rejected: 0, leftUnpublished: 0 };
    this.child = spawn(process.execPath, [join(ROOT, "bin/edge-gateway.js"), "run", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
    const onData = (d: Buffer) => {
      logFile.write(d);
      this.tail += d.toString();
      const lines = this.tail.split("\n");
      this.tail = lines.pop() ?? "";
      for (const line of lines) this.onLine(line);
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
    daemons.add(this.child);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", () => {
        daemons.delete(this.child);
        resolve();
      }),
    );
    this.ready = new Promise((resolve) => (this.onReady = resolve));
    void this.exited.then(() => this.onReady());
    this.scraper = setInterval(() => void this.scrape(), 300);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onLine(line: string): void {
    if (!line.startsWith("{")) return;
    try {
      const o = JSON.parse(line) as { msg?: string; stats?: Partial<DaemonRun>; left?: number };
      if (o.msg === "edge-gateway started") this.onReady();
      if (o.msg === "stopped" && o.stats) {
        Object.assign(this.run, pick(o.stats));
        this.run.exact = true;
      }
      if (typeof o.left === "number") this.run.leftUnpublished = o.left;
      // The seq store's `unclean stop` warning: the seqs this process skips (visible gaps, not losses).
      const ranges = (o as { ranges?: Record<string, [number, number]> }).ranges;
      if (ranges && typeof ranges === "object") this.run.skipped = { ...this.run.skipped, ...ranges };
    } catch {
      // not a log line of ours
    }
  }

  private async scrape(): Promise<void> {
    if (this.run.exact) return;
    try {
      const text = await (await fetch(this.metricsUrl, { signal: AbortSignal.timeout(1000) })).text();
      const get = (name: string) => Number(new RegExp(`^edge_gateway_publisher_${name}_total\\{[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
      const next = { accepted: get("accepted"), published: get("published"), duplicates: get("duplicates"), dropped: get("dropped"), rejected: get("rejected") };
      if (!this.run.exact && Object.values(next).every(Number.isFinite)) Object.assign(this.run, next);
    } catch {
      // not up yet, or stopped: the last values stand
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.child.kill(sig);
  }

  /** kill -9 and wait. */
  async kill(): Promise<void> {
    this.stopScraping();
    this.run.end = "kill";
    this.run.endedAt = Date.now();
    this.signal("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, wait up to `graceMs` for a clean exit, else kill -9. */
  async term(graceMs: number, end: "term" | "final"): Promise<boolean> {
    this.signal("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    this.stopScraping();
    this.run.end = timedOut ? "term-timeout" : end;
    this.run.endedAt = Date.now();
    if (timedOut) await this.kill().then(() => (this.run.end = "term-timeout"));
    return !timedOut;
  }

  stopScraping(): void {
    if (this.scraper) clearInterval(this.scraper);
    this.scraper = undefined;
  }
}

function pick(s: Partial<DaemonRun>): Partial<DaemonRun> {
  const out: Partial<DaemonRun> = {};
  for (const k of ["accepted", "published", "duplicates", "dropped", "rejected"] as const) if (typeof s[k] === "number") out[k] = s[k];
  return out;
}

export class World {
  readonly runs: DaemonRun[] = [];
  /** msg id → distinct bodies seen on the leaf's `sensors.>` (every attempt). */
  readonly attempts = new Map<string, Set<string>>();
  hub!: NatsServerProcess;
  leaf!: NatsServerProcess;
  link!: TcpProxy;
  leafStopped = false;
  private daemon?: DaemonProc;
  private watcher?: NatsConnection;
  private sub?: Subscription;
  private configFile = "";
  private metricsUrl = "";
  private logFile!: WriteStream;
  private constructor(
    readonly dir: string,
    private readonly opts: WorldOptions,
  ) {}

  static async start(opts: WorldOptions): Promise<World> {
    const w = new World(await mkdtemp(join(tmpdir(), "egw-chaos-")), opts);
    try {
      await w.boot();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  private async boot(): Promise<void> {
    this.logFile = createWriteStream(join(this.dir, "daemon.log"));
    this.hub = new NatsServerProcess({ name: "hub", dir: join(this.dir, "hub"), render: renderServerConfig({ name: "hub", domain: "hub", leafListener: true }) });
    await this.hub.start();
    const hubNc = await connect({ servers: this.hub.url });
    await ensureHubStream(hubNc);
    await addDevice(hubNc, DEVICE);
    await hubNc.close();
    this.link = await TcpProxy.start(this.hub.leafPort);
    const httpPort = await freePort();
    const input = {
      device: { id: DEVICE, region: "lab" },
      remoteConfig: false,
      state: join(this.dir, "state"),
      http: { listen: `127.0.0.1:${httpPort}` },
      log: { level: "info" },
      sensors: Array.from({ length: this.opts.sensors }, (_, i) => ({ id: `s${i}`, type: "temperature", driver: "simulated", interval: `${this.opts.intervalMs}ms`, unit: "Cel", waveform: "random-walk", min: 0, max: 100 })),
    };
    const v = validateBootstrap(input);
    if (!v.ok) throw new Error(`chaos: daemon config invalid: ${JSON.stringify(v.problems)}`);
    const cfg = v.value;
    this.leaf = new NatsServerProcess({
      name: DEVICE,
      dir: join(this.dir, "leaf"),
      render: (ports, storeDir) => renderLeafConfig(cfg, { hub: `nats-leaf://127.0.0.1:${this.link.port}`, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false }),
    });
    await this.leaf.start();
    this.leafReadyAt = Date.now();
    await until(() => this.leaf.leafLinkUp(), 20_000, "the leaf link");
    this.watcher = await connect({ servers: this.leaf.url, maxReconnectAttempts: -1, reconnectTimeWait: 100, name: "chaos-watcher" });
    this.sub = this.watcher.subscribe("sensors.>", {
      callback: (err, m) => {
        if (err) return;
        const id = m.headers?.get("Nats-Msg-Id");
        if (!id) return;
        const set = this.attempts.get(id) ?? new Set<string>();
        set.add(m.string());
        this.attempts.set(id, set);
      },
    });
    await this.watcher.flush();
    const file = { ...input, nats: { servers: [this.leaf.url] } };
    this.configFile = join(this.dir, "gateway.yaml");
    await writeFile(this.configFile, JSON.stringify(file, null, 2));
    this.metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
    await this.startDaemon();
  }

  get daemonUp(): boolean {
    return !!this.daemon?.alive;
  }

  get leafUp(): boolean {
    return this.leaf.running && !this.leafStopped;
  }

  /** When the leaf's JetStream last became able to store (after its start or a SIGCONT). */
  leafReadyAt = 0;

  /**
   * ms the leaf has been able to store readings: 0 while it runs but its stream does not answer
   * yet (just restarted), undefined while it is down or stopped, or when readiness is unknown
   * (its stream did not answer within 30 s of a restart: then kills count as "leaf up").
   */
  get leafReadyForMs(): number | undefined {
    if (!this.leafUp || this.leafReadyAt < 0) return undefined;
    return this.leafReadyAt === 0 ? 0 : Date.now() - this.leafReadyAt;
  }

  /** Starts the leaf again (after a kill -9) and notes when its JetStream answers. */
  async restartLeaf(): Promise<void> {
    this.leafReadyAt = 0;
    await this.leaf.start();
    const nc = await connect({ servers: this.leaf.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    try {
      await until(async () => {
        const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 500 }).catch(() => undefined);
        return !!jsm && (await jsm.streams.info("TELEMETRY").then(() => true, () => false));
      }, 30_000, "the leaf's stream after a restart");
      this.leafReadyAt = Date.now();
    } catch {
      this.leafReadyAt = -1; // unknown: kills count as "leaf up" (the strict reading)
    } finally {
      await nc.close();
    }
  }

  /** Starts a daemon process; resolves once it logged that it started (30 s at most). */
  async startDaemon(): Promise<void> {
    const d = new DaemonProc(this.configFile, this.metricsUrl, this.logFile);
    this.daemon = d;
    this.runs.push(d.run);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([d.ready, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
  }

  /** Records which fault ends the current daemon process. */
  markDaemonFault(index: number): void {
    if (this.daemon) this.daemon.run.fault = index;
  }

  async killDaemon(): Promise<void> {
    await this.daemon?.kill();
  }

  /** SIGTERM; false when it had not exited after `graceMs` (then it was killed -9). */
  async termDaemon(graceMs: number, end: "term" | "final" = "term"): Promise<boolean> {
    return (await this.daemon?.term(graceMs, end)) ?? true;
  }

  signalLeaf(sig: "SIGSTOP" | "SIGCONT"): void {
    const pid = this.leaf.pid;
    if (pid === undefined) return;
    process.kill(pid, sig);
    this.leafStopped = sig === "SIGSTOP";
    if (sig === "SIGCONT") this.leafReadyAt = Date.now();
  }

  /** Waits until the hub stream holds as many of this device's readings as the leaf (or `timeoutMs`). */
  async waitHubCaughtUp(timeoutMs: number): Promise<boolean> {
    const leafNc = await connect({ servers: this.leaf.url });
    const hubNc = await connect({ servers: this.hub.url });
    try {
      const leafJsm = await jetstreamManager(leafNc);
      const hubJsm = await jetstreamManager(hubNc);
      await until(async () => {
        const [l, h] = await Promise.all([leafJsm.streams.info("TELEMETRY"), hubJsm.streams.info("TELEMETRY")]).catch(() => [undefined, undefined]);
        return !!l && !!h && l.state.messages === h.state.messages;
      }, timeoutMs, "the hub to catch up with the leaf");
      return true;
    } catch {
      return false;
    } finally {
      await leafNc.close();
      await hubNc.close();
    }
  }

  /** Every message of this device in the leaf and the hub stream. */
  async readStreams(): Promise<{ leaf: StoredMsg[]; hub: StoredMsg[] }> {
    return { leaf: await readAll(this.leaf.url), hub: await readAll(this.hub.url) };
  }

  /** Stops everything (also after a failure) and removes the working dir unless `keep`. */
  async close(): Promise<void> {
    this.daemon?.stopScraping();
    if (this.daemon?.alive) await this.daemon.kill();
    if (this.leafStopped) this.signalLeaf("SIGCONT");
    await this.sub?.drain().catch(() => undefined);
    await this.watcher?.close().catch(() => undefined);
    await this.link?.close();
    await this.leaf?.stop().catch(() => undefined);
    await this.hub?.stop().catch(() => undefined);
    await new Promise<void>((r) => (this.logFile ? this.logFile.end(() => r()) : r()));
    if (!this.opts.keep) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Reads a whole `TELEMETRY` stream with an ordered consumer. */
async function readAll(url: string): Promise<StoredMsg[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("TELEMETRY").catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const last = info.state.last_seq;
    const consumer = await jetstream(nc).consumers.get("TELEMETRY");
    const out: StoredMsg[] = [];
    const iter = await consumer.consume({ max_messages: 1000 });
    for await (const m of iter) {
      const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
      const p = parseMsgId(msgId, DEVICE);
      if (p) {
        const body = m.string();
        const ts = (JSON.parse(body) as { ts: number }).ts;
        out.push({ msgId, sensor: p.sensor, seq: p.seq, ts, body });
      }
      if (m.seq >= last) break;
    }
    await iter.close().catch(() => undefined);
    return out;
  } finally {
    await nc.close();
  }
}
