/**
 * `edge-gateway demo`: the whole topology on one machine. A hub and a leaf nats-server (from
 * PATH), the daemon with three simulated sensors on the leaf, and a live view from the hub.
 * The leaf link runs through a local TCP proxy so the demo can cut it and show the leaf
 * buffering and the hub catching up by itself.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { startDemoDatabase } from "../cloud/demo-db.js";
import { addDevice, ensureHubConfigBucket, ensureHubStream } from "../cloud/hub.js";
import { startDemoHub } from "../demo/auth.js";
import { renderLeafConfig } from "../config/leaf-config.js";
import { validateBootstrap } from "../config/load.js";
import { Daemon } from "../daemon/daemon.js";
import { NatsServerProcess } from "../demo/nats-server.js";
import { TcpProxy } from "../demo/tcp-proxy.js";
import { delay } from "../drivers/util.js";
import { createLogger } from "../logger.js";
import { durationFlag, EXIT, parse, reportError, type Command } from "./command.js";
import { formatReadingLine } from "./watch.js";

const DEVICE = "demo-pi";
const REGION = "eu-west";

const usage = `Usage: edge-gateway demo [--outage DURATION] [--duration DURATION] [--interval DURATION] [--no-auth]

Runs everything locally: a hub and a leaf nats-server (nats-server must be on PATH), the
gateway daemon with three simulated sensors publishing through the leaf's JetStream, and a live
view of sensors.*.${REGION}.> on the hub with stream counts.

  --outage D     cut the leaf link 5 s after start for D (e.g. 10s), then restore it: the leaf
                 keeps every reading, the hub catches up by itself
  --duration D   stop by itself after D (default: run until Ctrl-C or q)
  --interval D   sampling interval of the simulated sensors (default 1s)
  --no-auth      run the hub without fleet auth (by default it runs the config of
                 \`cloud hub-config\` and the leaf links with its own device credential)

Keys (in a terminal): o = cut / restore the uplink, q = quit.`;

interface Counts {
  leaf: number;
  hub: number;
}

async function streamMessages(nc: NatsConnection): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;
  } catch {
    return 0; // not created yet: the first reading creates it
  }
}

export const demo: Command = {
  usage,
  async run(argv, io) {
    const cleanup: (() => Promise<unknown>)[] = [];
    const done = async () => {
      for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    };
    try {
      const { values } = parse(argv, { outage: { type: "string" }, duration: { type: "string" }, interval: { type: "string" }, "no-auth": { type: "boolean" } });
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const outageMs = durationFlag("--outage", values.outage);
      const durationMs = durationFlag("--duration", values.duration);
      const interval = values.interval ?? "1s";
      durationFlag("--interval", interval, "1s");

      const dir = await mkdtemp(join(tmpdir(), "edge-gateway-demo-"));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      io.out(`edge-gateway demo: working in ${dir}`);

      const auth = !values["no-auth"];
      const demoHub = await startDemoHub(dir, DEVICE, auth);
      const hub = demoHub.hub;
      cleanup.push(() => hub.stop());
      io.out(`hub   nats-server  ${hub.url}  (JetStream domain hub, leafnodes ${hub.leafUrl}, ${auth ? "fleet auth: device credential for the leaf link" : "no auth"})`);
      const hubNc = await connect({ servers: hub.url, ...demoHub.connectOpts });
      cleanup.push(() => hubNc.close());
      await ensureHubStream(hubNc);
      await ensureHubConfigBucket(hubNc);
      await addDevice(hubNc, DEVICE);
      await demoHub.registerLive(hubNc);
      // The cloud side: a `cloud ingest` worker storing every reading in an embedded SQLite file.
      const demoDb = await startDemoDatabase(hubNc, dir);
      if (typeof demoDb === "string") io.out(demoDb);
      else {
        cleanup.push(() => demoDb.finish());
        io.out(`cloud  ingest      → SQLite ${demoDb.file} (\`cloud latest\` shown on exit)`);
      }

      const link = await TcpProxy.start(hub.leafPort);
      cleanup.push(() => link.close());
      const v = validateBootstrap({
        device: { id: DEVICE, region: REGION },
        remoteConfig: false,
        http: false,
        state: join(dir, "state"),
        buffer: { maxBytes: "64MiB" },
        sensors: [
          { id: "kitchen-temp", type: "temperature", driver: "simulated", interval, unit: "Cel", min: 19, max: 23, period: "2m" },
          { id: "kitchen-hum", type: "humidity", driver: "simulated", interval, unit: "%RH", waveform: "random-walk", min: 30, max: 60 },
          { id: "boiler-power", type: "power", driver: "simulated", interval, unit: "W", min: 0, max: 2400, period: "30s" },
        ],
      });
      if (!v.ok) throw new Error(`demo config invalid: ${JSON.stringify(v.problems)}`);
      const config = v.value;
      const leaf = new NatsServerProcess({
        name: DEVICE,
        dir: join(dir, "leaf"),
        render: (ports, storeDir) =>
          renderLeafConfig(config, { hub: `nats-leaf://127.0.0.1:${link.port}`, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false, creds: demoHub.deviceCreds }),
      });
      cleanup.push(() => leaf.stop());
      await leaf.start();
      io.out(`leaf  nats-server  ${leaf.url}  (JetStream domain ${DEVICE}, linked to the hub through a local proxy)`);
      config.nats.servers = [leaf.url];
      const leafNc = await connect({ servers: leaf.url });
      cleanup.push(() => leafNc.close());

      // Keep the terminal for the live view: only errors from the daemon itself.
      const logger = createLogger("error", 2);
      const daemon = await Daemon.start({ config, logger, linkCheckMs: 1000 });
      cleanup.push(() => daemon.stop());
      io.out(`daemon ${DEVICE} in ${REGION}: kitchen-temp, kitchen-hum, boiler-power every ${interval}`);
      io.out(`live view on the hub: sensors.*.${REGION}.>   (o = cut/restore uplink, q = quit)\n`);

      const sub = hubNc.subscribe(`sensors.*.${REGION}.>`, { callback: (_e, m) => io.out(formatReadingLine(m)) });
      cleanup.push(async () => sub.unsubscribe());

      const stop = new AbortController();
      const onSignal = () => stop.abort();
      // Ctrl-C, kill, a closed terminal, or a closed pipe (`demo | head`): clean up the same way.
      const onStdoutError = () => stop.abort();
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, onSignal);
      process.stdout.on("error", onStdoutError);
      cleanup.push(async () => {
        for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.off(sig, onSignal);
        process.stdout.off("error", onStdoutError);
      });

      let cutAt: Counts | undefined;
      let waitingCatchUp: Counts | undefined;
      let buffered = 0;
      const counts = async (): Promise<Counts> => ({ leaf: await streamMessages(leafNc), hub: await streamMessages(hubNc) });
      const cut = async () => {
        await link.cut();
        cutAt = await counts();
        io.out(`\n=== uplink CUT: the leaf keeps every reading; the hub stream stays at ${cutAt.hub} ===\n`);
      };
      const restore = async () => {
        await link.restore();
        const now = await counts();
        waitingCatchUp = now;
        buffered = now.leaf - (cutAt?.leaf ?? now.leaf);
        io.out(`\n=== uplink RESTORED: ${buffered} readings were buffered on the leaf during the outage; the hub catches up by itself ===\n`);
      };
      if (process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.resume();
        const onKey = (buf: Buffer) => {
          const key = buf.toString();
          if (key === "q" || key === "\u0003") stop.abort();
          else if (key === "o") void (link.isUp ? cut() : restore());
        };
        process.stdin.on("data", onKey);
        cleanup.push(async () => {
          process.stdin.off("data", onKey);
          process.stdin.setRawMode(false);
          process.stdin.pause();
        });
      }

      const started = Date.now();
      let outageState: "pending" | "cut" | "done" = outageMs ? "pending" : "done";
      let lastStatus = 0;
      while (!stop.signal.aborted) {
        const elapsed = Date.now() - started;
        if (durationMs !== undefined && elapsed >= durationMs) break;
        if (outageState === "pending" && elapsed >= 5000) {
          outageState = "cut";
          await cut();
        } else if (outageState === "cut" && elapsed >= 5000 + outageMs!) {
          outageState = "done";
          await restore();
        }
        if (Date.now() - lastStatus >= 5000 || waitingCatchUp) {
          const c = await counts();
          if (Date.now() - lastStatus >= 5000) {
            lastStatus = Date.now();
            const l = daemon.link;
            const uplink = !link.isUp ? "cut" : l.hub === "unknown" ? "checking" : l.hub;
            io.out(`--- uplink ${uplink} | leaf stream ${c.leaf} | hub stream ${c.hub} (behind by ${Math.max(0, c.leaf - c.hub)}) | queued ${daemon.publisher.stats.queued}`);
          }
          // Caught up once the hub holds what the leaf holds. Live readings keep arriving at both
          // (sensors of one interval in one burst), so the two counts are read leaf, hub, leaf:
          // only a snapshot in which the leaf did not move between them is compared.
          if (waitingCatchUp && c.leaf > 0 && c.hub >= c.leaf) {
            const leafAgain = await streamMessages(leafNc);
            if (leafAgain === c.leaf && c.hub === c.leaf) {
              io.out(`\n=== hub caught up: the ${buffered} readings buffered during the outage arrived; hub stream ${c.hub} = leaf stream ${c.leaf}, none lost ===\n`);
              waitingCatchUp = undefined;
            }
          }
        }
        await delay(250, stop.signal);
      }
      if (typeof demoDb !== "string") io.out(`\n${await demoDb.finish()}`);
      io.out("\nstopping: daemon, leaf, hub …");
      await done();
      io.out("demo stopped, everything cleaned up");
      return EXIT.ok;
    } catch (err) {
      await done();
      return reportError(err, io, usage);
    }
  },
};
