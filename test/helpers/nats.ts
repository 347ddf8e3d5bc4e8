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
 * `hubLeafPort`, authenticating with `creds` if given. `domain` overrides the JetStream domain
 * (default: the device id), to play a leaf that claims another device's domain.
 */
export async function startLeaf(deviceId: string, hubLeafPort: number, opts: { creds?: string; domain?: string } = {}): Promise<NatsServer> {
  const v = validateBootstrap({ device: { id: opts.domain ?? deviceId, region: "test" } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return NatsServer.create(deviceId, (ports, storeDir) =>
    renderLeafConfig(v.value, { hub: `nats-leaf://127.0.0.1:${hubLeafPort}`, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false, creds: opts.creds }),
  );
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
