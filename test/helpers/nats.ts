/**
 * Real nats-server processes for tests: a single JetStream server, or a hub (domain `hub`,
 * leafnode listener) with leaves (JetStream domain = device id) on free loopback ports, each
 * with its own temporary store. Servers can be killed with -9 and restarted on the same store
 * and ports. `cleanupNats()` (or `stop()`) removes everything, also when a test failed.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
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
  static async create(name: string, render: NatsServerSpec["render"]): Promise<NatsServer> {
    const s = new NatsServer({ name, dir: await tempDir(`egw-nats-${name}-`), render });
    running.add(s);
    await s.start();
    return s;
  }

  override async stop(): Promise<void> {
    running.delete(this);
    await super.stop();
  }

  /** A client connection to this server (no reconnects), closed by the caller. */
  connect(): Promise<NatsConnection> {
    return connect({ servers: this.url, reconnect: false });
  }
}

/** A single JetStream server (no domain). */
export function startJetStreamServer(name = "js"): Promise<NatsServer> {
  return NatsServer.create(name, renderServerConfig({ name }));
}

/** A hub: JetStream domain `hub` (or `domain`) and a leafnode listener. */
export function startHub(domain = "hub"): Promise<NatsServer> {
  return NatsServer.create("hub", renderServerConfig({ name: "hub", domain, leafListener: true }));
}

/**
 * A leaf for `deviceId`, configured by the production leaf-config renderer, linked to
 * `hubLeafPort` — or to every port of a list (a hub cluster's nodes).
 */
export async function startLeaf(deviceId: string, hubLeafPort: number | number[]): Promise<NatsServer> {
  const v = validateBootstrap({ device: { id: deviceId, region: "test" } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const hub = (Array.isArray(hubLeafPort) ? hubLeafPort : [hubLeafPort]).map((p) => `nats-leaf://127.0.0.1:${p}`);
  return NatsServer.create(deviceId, (ports, storeDir) => renderLeafConfig(v.value, { hub, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false }));
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
export async function startHubCluster(opts: { size?: number; domain?: string } = {}): Promise<HubCluster> {
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
    const started = await Promise.all(
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
    nodes.push(...started);
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
  stop(): Promise<void>;
}

/**
 * A hub (domain `hub`) and one leaf per device id (domain = id), each leaf connected through a
 * TcpProxy so a test can cut the link without killing either server.
 */
export async function startHubAndLeaves(deviceIds: string[], opts: { hubDomain?: string } = {}): Promise<HubAndLeaves> {
  const hub = await startHub(opts.hubDomain);
  const leaves: NatsServer[] = [];
  const links: TcpProxy[] = [];
  const stop = async () => {
    await Promise.all([...leaves.map((l) => l.stop()), ...links.map((l) => l.close())]);
    await hub.stop();
  };
  try {
    for (const id of deviceIds) {
      const link = await TcpProxy.start(hub.leafPort);
      links.push(link);
      leaves.push(await startLeaf(id, link.port));
    }
    await Promise.all(leaves.map((l) => waitForLeafLink(l)));
  } catch (e) {
    await stop();
    throw e;
  }
  return { hub, leaves, links, stop };
}

/** Waits until the leaf's log shows its leafnode connection to the hub up. */
export function waitForLeafLink(leaf: NatsServerProcess, timeout = 20_000): Promise<true> {
  return waitFor(() => leaf.leafLinkUp() || undefined, { timeout, what: `leaf ${leaf.name} to connect to the hub` });
}

/** Stops every server started by this module (for afterAll). */
export async function cleanupNats(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
