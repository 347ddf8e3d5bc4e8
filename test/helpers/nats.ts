/**
 * Real nats-server processes for tests: a single JetStream server, or a hub (domain `hub`,
 * leafnode listener) with leaves (JetStream domain = device id) on free loopback ports, each
 * with its own temporary store. Servers can be killed with -9 and restarted on the same store
 * and ports. `cleanupNats()` (or `stop()`) removes everything, also when a test failed.
 */
import { execFileSync } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { renderLeafConfig } from "../../src/config/leaf-config.js";
import { validateBootstrap } from "../../src/config/load.js";
import { startProc, tempDir, type Proc } from "./procs.js";
import { waitFor } from "./wait.js";
import { TcpProxy } from "./tcp-proxy.js";

let binary: string | undefined;

/** Path of nats-server, or a clear error saying how to install it. */
export function natsServerBinary(): string {
  if (binary) return binary;
  try {
    binary = execFileSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).trim();
  } catch {
    binary = "";
  }
  if (!binary) {
    throw new Error(
      "nats-server is not installed: run `sudo apt-get install nats-server` (Debian/Raspberry Pi OS), or `npm test`, which installs it",
    );
  }
  return binary;
}

export interface ServerSpec {
  name: string;
  /** JetStream domain; undefined = no domain. */
  domain?: string;
  jetstream?: boolean;
  /** Open a leafnode listener (hub). */
  leafListener?: boolean;
  /** Full config text override (leaves use the production leaf-config generator). */
  render?: (ports: { client: number; leaf: number }, storeDir: string) => string;
}

const running = new Set<NatsServer>();

export class NatsServer {
  proc?: Proc;
  clientPort = -1;
  leafPort = -1;
  readonly dir: string;
  private readonly spec: ServerSpec;
  private restarts = 0;

  private constructor(spec: ServerSpec, dir: string) {
    this.spec = spec;
    this.dir = dir;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.clientPort}`;
  }
  get leafUrl(): string {
    return `nats-leaf://127.0.0.1:${this.leafPort}`;
  }
  get storeDir(): string {
    return join(this.dir, "store");
  }
  get name(): string {
    return this.spec.name;
  }
  get running(): boolean {
    return !!this.proc && this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }
  /** The server's log so far. */
  log(): string {
    return (this.proc?.stderr() ?? "") + (this.proc?.stdout() ?? "");
  }

  static async start(spec: ServerSpec): Promise<NatsServer> {
    natsServerBinary();
    const dir = await tempDir(`egw-nats-${spec.name}-`);
    const s = new NatsServer(spec, dir);
    running.add(s);
    await s.launch();
    return s;
  }

  private configText(): string {
    const ports = { client: this.clientPort, leaf: this.leafPort };
    if (this.spec.render) return this.spec.render(ports, this.storeDir);
    const lines = [`server_name: ${JSON.stringify(this.spec.name)}`, `listen: "127.0.0.1:${this.clientPort}"`];
    if (this.spec.jetstream !== false) {
      lines.push(`jetstream { store_dir: ${JSON.stringify(this.storeDir)}${this.spec.domain ? `, domain: ${JSON.stringify(this.spec.domain)}` : ""} }`);
    }
    if (this.spec.leafListener) lines.push(`leafnodes { listen: "127.0.0.1:${this.leafPort}" }`);
    return lines.join("\n") + "\n";
  }

  private async launch(): Promise<void> {
    await mkdir(this.storeDir, { recursive: true });
    const conf = join(this.dir, `server-${this.restarts}.conf`);
    await writeFile(conf, this.configText());
    const proc = startProc(natsServerBinary(), ["-c", conf]);
    this.proc = proc;
    const ready = await waitFor(
      () => {
        const log = proc.stderr();
        if (proc.child.exitCode !== null) throw new Error(`nats-server ${this.spec.name} exited:\n${log}`);
        return /Server is ready/.test(log) ? log : undefined;
      },
      { timeout: 15_000, what: `nats-server ${this.spec.name} to be ready` },
    );
    const client = /Listening for client connections on [^:]+:(\d+)/.exec(ready);
    if (client) this.clientPort = Number(client[1]);
    const leaf = /Listening for leafnode connections on [^:]+:(\d+)/.exec(ready);
    if (leaf) this.leafPort = Number(leaf[1]);
  }

  /** kill -9: no shutdown, the store is left as a crash leaves it. */
  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }

  /** Starts the server again on the same ports and store. */
  async restart(): Promise<void> {
    if (this.running) await this.kill9();
    this.restarts++;
    await this.launch();
  }

  /** Graceful stop and removal of the store. Safe to call twice. */
  async stop(): Promise<void> {
    running.delete(this);
    if (this.proc && this.running) {
      this.proc.kill("SIGTERM");
      const t = setTimeout(() => this.proc?.kill("SIGKILL"), 5000);
      await this.proc.exited;
      clearTimeout(t);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A client connection to this server, closed by the caller. */
  connect(): Promise<NatsConnection> {
    return connect({ servers: this.url, reconnect: false });
  }
}

/** A single JetStream server (no domain). */
export function startJetStreamServer(name = "js"): Promise<NatsServer> {
  return NatsServer.start({ name });
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
 * TcpProxy so a test can cut the link without killing either server. The leaves' configs come
 * from the production `renderLeafConfig`.
 */
export async function startHubAndLeaves(deviceIds: string[], opts: { hubDomain?: string } = {}): Promise<HubAndLeaves> {
  const hub = await NatsServer.start({ name: "hub", domain: opts.hubDomain ?? "hub", leafListener: true });
  const leaves: NatsServer[] = [];
  const links: TcpProxy[] = [];
  try {
    for (const id of deviceIds) {
      const link = await TcpProxy.start(hub.leafPort);
      links.push(link);
      const v = validateBootstrap({ device: { id, region: "test" }, buffer: { maxBytes: "256MiB" } });
      if (!v.ok) throw new Error(JSON.stringify(v.problems));
      const leaf = await NatsServer.start({
        name: id,
        render: (ports, storeDir) =>
          renderLeafConfig(v.value, {
            hub: `nats-leaf://127.0.0.1:${link.port}`,
            listen: `127.0.0.1:${ports.client}`,
            storeDir,
            monitor: false,
          }),
      });
      leaves.push(leaf);
    }
    await Promise.all(leaves.map((l) => waitForLeafLink(l)));
  } catch (e) {
    await Promise.all([...leaves.map((l) => l.stop()), ...links.map((l) => l.close()), hub.stop()]);
    throw e;
  }
  return {
    hub,
    leaves,
    links,
    async stop() {
      await Promise.all([...leaves.map((l) => l.stop()), ...links.map((l) => l.close())]);
      await hub.stop();
    },
  };
}

/** Waits until the leaf's log shows its leafnode connection to the hub (re-)established. */
export function waitForLeafLink(leaf: NatsServer, timeout = 20_000): Promise<true> {
  return waitFor(() => linkUpNow(leaf.log()) || undefined, { timeout, what: `leaf ${leaf.name} to connect to the hub` });
}

/** True when the leaf's log says its last leafnode event was a connect. */
export function linkUpNow(log: string): boolean {
  const created = log.lastIndexOf("Leafnode connection created");
  const closed = log.lastIndexOf("Leafnode connection closed");
  return created > closed;
}

/** Stops every server started by this module (for afterAll). */
export async function cleanupNats(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
