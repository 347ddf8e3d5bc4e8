/**
 * Real nats-server processes for tests: a single JetStream server, or a hub (domain `hub`,
 * leafnode listener) with leaves (JetStream domain = device id) on free loopback ports, each
 * with its own temporary store. Servers can be killed with -9 and restarted on the same store
 * and ports. `cleanupNats()` (or `stop()`) removes everything, also when a test failed.
 */
import type { ChildProcess } from "node:child_process";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { renderLeafConfig } from "../../src/config/leaf-config.js";
import { validateBootstrap } from "../../src/config/load.js";
import { NatsServerProcess, renderServerConfig, type NatsServerSpec } from "../../src/demo/nats-server.js";
import { TcpProxy } from "../../src/demo/tcp-proxy.js";
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

/** A leaf for `deviceId`, configured by the production leaf-config renderer, linked to `hubLeafPort`. */
export async function startLeaf(deviceId: string, hubLeafPort: number): Promise<NatsServer> {
  const v = validateBootstrap({ device: { id: deviceId, region: "test" } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return NatsServer.create(deviceId, (ports, storeDir) =>
    renderLeafConfig(v.value, { hub: `nats-leaf://127.0.0.1:${hubLeafPort}`, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false }),
  );
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
