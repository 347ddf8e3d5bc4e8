/**
 * Real nats-server processes for tests: a single JetStream server, or a hub (domain `hub`,
 * leafnode listener) with leaves (JetStream domain = device id) on free loopback ports, each
 * with its own temporary store. Servers can be killed with -9 and restarted on the same store
 * and ports. `cleanupNats()` (or `stop()`) removes everything, also when a test failed.
 */
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { credsAuthenticator } from "@nats-io/nats-core";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FleetKeys, OPS_INBOX_PREFIX } from "../../src/cloud/auth.js";
import { renderHubConfig } from "../../src/cloud/hub-config.js";
import { renderLeafConfig } from "../../src/config/leaf-config.js";
import { validateBootstrap } from "../../src/config/load.js";
import { NatsServerProcess, renderServerConfig, type NatsServerSpec } from "../../src/demo/nats-server.js";
import { TcpProxy } from "../../src/demo/tcp-proxy.js";
import { freePort } from "./mosquitto.js";
import { tempDir } from "./procs.js";
import { waitFor } from "./wait.js";

export { TcpProxy };

const running = new Set<NatsServer>();

export class NatsServer extends NatsServerProcess {
  /** With auth: the credential clients of this server use by default (the ops user on a hub). */
  creds?: Uint8Array;

  static async create(name: string, render: NatsServerSpec["render"]): Promise<NatsServer> {
    const s = new NatsServer({ name, dir: await tempDir(`egw-nats-${name}-`), render });
    running.add(s);
    await s.start();
    return s;
  }

  override async stop(): Promise<void> {
    running.delete(this);
    // A server a test left stopped (SIGSTOP) would ignore SIGTERM.
    if (this.running) this.signal("SIGCONT");
    await super.stop();
  }

  /** Sends `signal` to the server process (SIGSTOP / SIGCONT: a leaf that hangs, then wakes up). */
  signal(signal: NodeJS.Signals): void {
    const child = (this as unknown as { child?: ChildProcess }).child;
    if (!child?.pid) throw new Error(`nats-server ${this.name} is not running`);
    process.kill(child.pid, signal);
  }

  /**
   * A client connection to this server (no reconnects), closed by the caller. On a hub with
   * auth it authenticates as the operator tools do (ops credential, their own inbox prefix).
   */
  connect(): Promise<NatsConnection> {
    if (!this.creds) return connect({ servers: this.url, reconnect: false });
    return connect({ servers: this.url, reconnect: false, authenticator: credsAuthenticator(this.creds), inboxPrefix: OPS_INBOX_PREFIX });
  }
}

/** A single JetStream server (no domain). */
export function startJetStreamServer(name = "js"): Promise<NatsServer> {
  return NatsServer.create(name, renderServerConfig({ name }));
}

/**
 * A hub: JetStream domain `hub` (or `domain`) and a leafnode listener. With `auth` (fleet
 * keys), the production renderer of `cloud hub-config` makes it a JWT-auth hub, and
 * `hub.connect()` uses the ops credential.
 */
export async function startHub(domain = "hub", auth?: FleetKeys): Promise<NatsServer> {
  if (!auth) return NatsServer.create("hub", renderServerConfig({ name: "hub", domain, leafListener: true }));
  const hub = await NatsServer.create("hub", (ports, storeDir) =>
    renderHubConfig(auth, {
      domain,
      listen: `127.0.0.1:${ports.client}`,
      leafListen: `127.0.0.1:${ports.leaf}`,
      // See renderServerConfig: a dead advertised address keeps leaves on the test proxy.
      leafAdvertise: "127.0.0.1:1",
      monitor: false,
      storeDir,
      resolverDir: join(storeDir, "..", "accounts"),
    }),
  );
  hub.creds = await readCreds(auth.opsCredsPath);
  return hub;
}

async function readCreds(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/** Fleet keys (operator, accounts, ops and sys credentials) in a temp dir. */
export async function testFleetKeys(): Promise<FleetKeys> {
  return FleetKeys.open(await tempDir("egw-keys-"));
}

/** Writes a device credential issued by `keys` to a temp file and returns its path. */
export async function deviceCreds(keys: FleetKeys, deviceId: string): Promise<string> {
  const path = join(await tempDir(`egw-creds-${deviceId}-`), `${deviceId}.creds`);
  await writeFile(path, await keys.issueDevice(deviceId), { mode: 0o600 });
  return path;
}

/**
 * A leaf for `deviceId`, configured by the production leaf-config renderer, linked to
 * `hubLeafPort` — or to every port of a list (a hub cluster's nodes) — authenticating with
 * `creds` if given. `domain` overrides the JetStream domain (default: the device id), to play a
 * leaf that claims another device's domain.
 */
export async function startLeaf(deviceId: string, hubLeafPort: number | number[], opts: { creds?: string; domain?: string } = {}): Promise<NatsServer> {
  const v = validateBootstrap({ device: { id: opts.domain ?? deviceId, region: "test" } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const hub = (Array.isArray(hubLeafPort) ? hubLeafPort : [hubLeafPort]).map((p) => `nats-leaf://127.0.0.1:${p}`);
  return NatsServer.create(deviceId, (ports, storeDir) => renderLeafConfig(v.value, { hub, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false, creds: opts.creds }));
}

export interface HubCluster {
  nodes: NatsServer[];
  /** Every node's client URL (for a multi-homed client). */
  urls: string[];
  /** Every node's leafnode port (for a leaf's remote `urls`). */
  leafPorts: number[];
  /** Every node's monitoring port (/varz, /connz, /leafz, /jsz). */
  monitorPorts: number[];
  /** A client connected to every node (fails over), closed by the caller. */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/**
 * A 3-node (or `size`) hub cluster: JetStream domain `hub`, routes and leafnode listeners on
 * free loopback ports, each node with a monitoring port and its own store. Nodes can be killed
 * and restarted (same ports, same store). Leaves are told the other nodes' leafnode URLs by
 * the hub's INFO (no `advertise`: nothing here sits behind a proxy).
 */
export async function startHubCluster(opts: { size?: number; domain?: string } = {}, attempt = 1): Promise<HubCluster> {
  const size = opts.size ?? 3;
  const domain = opts.domain ?? "hub";
  const routePorts: number[] = [];
  const httpPorts: number[] = [];
  const leafPorts: number[] = [];
  const clientPorts: number[] = [];
  for (let i = 0; i < size; i++) {
    routePorts.push(await freePort());
    httpPorts.push(await freePort());
    leafPorts.push(await freePort());
    clientPorts.push(await freePort());
  }
  const nodes: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    // Started together: a JetStream cluster needs its peers to elect a meta leader.
    const settled = await Promise.allSettled(
      routePorts.map((_, i) =>
        NatsServer.create(`hub-${i}`, (_ports, storeDir) =>
          [
            `server_name: "hub-${i}"`,
            `listen: "127.0.0.1:${clientPorts[i]}"`,
            `http: "127.0.0.1:${httpPorts[i]}"`,
            `jetstream { store_dir: ${JSON.stringify(storeDir)}, domain: ${JSON.stringify(domain)} }`,
            `cluster { name: "${domain}", listen: "127.0.0.1:${routePorts[i]}", routes: [${routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`).join(", ")}] }`,
            `leafnodes { listen: "127.0.0.1:${leafPorts[i]}" }`,
            ``,
          ].join("\n"),
        ),
      ),
    );
    for (const r of settled) if (r.status === "fulfilled") nodes.push(r.value);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    const urls = nodes.map((n) => n.url);
    const cluster: HubCluster = {
      nodes,
      urls,
      leafPorts,
      monitorPorts: httpPorts,
      connect: () => connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 }),
      stop,
    };
    await waitForJetStreamCluster(cluster);
    return cluster;
  } catch (e) {
    await stop();
    // The ports were free when picked; a test file running beside this one may have taken one
    // since (seen once in a full run: "bind: address already in use"). Pick new ones.
    if (attempt < 3 && /address already in use/.test(e instanceof Error ? e.message : String(e))) return startHubCluster(opts, attempt + 1);
    throw e;
  }
}

/** Waits until every running node of the cluster reports a JetStream meta leader. */
export async function waitForJetStreamCluster(cluster: HubCluster, timeout = 30_000): Promise<void> {
  await waitFor(
    async () => {
      for (const [i, n] of cluster.nodes.entries()) {
        if (!n.running) continue;
        const r = await fetch(`http://127.0.0.1:${cluster.monitorPorts[i]}/jsz`);
        const j = (await r.json()) as { meta_cluster?: { leader?: string } };
        if (!j.meta_cluster?.leader) return false;
      }
      return true;
    },
    { timeout, interval: 200, what: "the hub cluster's JetStream meta leader" },
  );
}

/**
 * The cluster node (index) a leaf's link is connected to, from the leaf's log (its last
 * "Leafnode connection created" names the hub's leafnode address; 2.9.10's /leafz has no
 * server names); -1 if its link is down.
 */
export function leafNodeOf(cluster: HubCluster, leaf: NatsServerProcess): number {
  if (!leaf.leafLinkUp()) return -1;
  const lines = leaf.log().split("\n").filter((l) => l.includes("Leafnode connection created"));
  const m = /127\.0\.0\.1:(\d+) - lid/.exec(lines.at(-1) ?? "");
  return m ? cluster.leafPorts.indexOf(Number(m[1])) : -1;
}
export interface HubAndLeaves {
  hub: NatsServer;
  leaves: NatsServer[];
  /** One TCP proxy per leaf between its remote and the hub's leafnode port: cut/restore the link. */
  links: TcpProxy[];
  /** With `auth`: the fleet keys, and each leaf's credential file (same order as `leaves`). */
  keys?: FleetKeys;
  creds: string[];
  stop(): Promise<void>;
}

/**
 * A hub (domain `hub`) and one leaf per device id (domain = id), each leaf connected through a
 * TcpProxy so a test can cut the link without killing either server.
 */
export async function startHubAndLeaves(deviceIds: string[], opts: { hubDomain?: string; auth?: boolean } = {}): Promise<HubAndLeaves> {
  const keys = opts.auth ? await testFleetKeys() : undefined;
  const hub = await startHub(opts.hubDomain, keys);
  const leaves: NatsServer[] = [];
  const links: TcpProxy[] = [];
  const creds: string[] = [];
  const stop = async () => {
    await Promise.all([...leaves.map((l) => l.stop()), ...links.map((l) => l.close())]);
    await hub.stop();
  };
  try {
    for (const id of deviceIds) {
      const link = await TcpProxy.start(hub.leafPort);
      links.push(link);
      const c = keys ? await deviceCreds(keys, id) : undefined;
      if (c) creds.push(c);
      leaves.push(await startLeaf(id, link.port, { creds: c }));
    }
    await Promise.all(leaves.map((l) => waitForLeafLink(l)));
  } catch (e) {
    await stop();
    throw e;
  }
  return { hub, leaves, links, keys, creds, stop };
}

/** Waits until the leaf's log shows its leafnode connection to the hub up. */
export function waitForLeafLink(leaf: NatsServerProcess, timeout = 20_000): Promise<true> {
  return waitFor(() => leaf.leafLinkUp() || undefined, { timeout, what: `leaf ${leaf.name} to connect to the hub` });
}

/** Stops every server started by this module (for afterAll). */
export async function cleanupNats(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
