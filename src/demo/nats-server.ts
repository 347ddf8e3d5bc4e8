/**
 * A nats-server child process: started from a config text, ready when it says so, its ports
 * read from its log (listeners on port -1 pick a free port), killable with -9 and restartable
 * on the same ports and store. Used by `edge-gateway demo` and by the test harness.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError } from "../errors.js";

export const NATS_INSTALL_HINT =
  "nats-server is not installed: run `sudo apt-get install nats-server` (Debian, Raspberry Pi OS), or put a nats-server 2.9+ binary on PATH";

/** Path of nats-server on PATH; throws EGW_NATS_SERVER_MISSING saying how to install it. */
export function findNatsServer(): string {
  let path = "";
  try {
    path = execFileSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).trim();
  } catch {
    path = "";
  }
  if (!path) throw new GatewayError("EGW_NATS_SERVER_MISSING", NATS_INSTALL_HINT);
  return path;
}

export interface Ports {
  client: number;
  leaf: number;
}

export interface NatsServerSpec {
  name: string;
  /** Working directory (config files, store); removed by `stop()`. */
  dir: string;
  /** The config text for these ports (-1 on first start = pick free ports) and store dir. */
  render(ports: Ports, storeDir: string): string;
}

/** Children still running, killed if this process exits without stopping them. */
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export class NatsServerProcess {
  clientPort = -1;
  leafPort = -1;
  private child?: ChildProcess;
  private output = "";
  private exit?: Promise<void>;
  private starts = 0;
  readonly spec: NatsServerSpec;
  private readonly binary: string;

  constructor(spec: NatsServerSpec) {
    this.spec = spec;
    this.binary = findNatsServer();
  }

  get name(): string {
    return this.spec.name;
  }
  get dir(): string {
    return this.spec.dir;
  }
  get storeDir(): string {
    return join(this.spec.dir, "store");
  }
  get url(): string {
    return `nats://127.0.0.1:${this.clientPort}`;
  }
  get leafUrl(): string {
    return `nats-leaf://127.0.0.1:${this.leafPort}`;
  }
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
  /** The running process's id (to send it SIGSTOP/SIGCONT), undefined when not running. */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }
  /** Everything the server logged since its last start. */
  log(): string {
    return this.output;
  }

  /** Starts the server and resolves once it is ready (15 s at most). */
  async start(): Promise<void> {
    await mkdir(this.storeDir, { recursive: true });
    const conf = join(this.spec.dir, `${this.spec.name}-${this.starts++}.conf`);
    await writeFile(conf, this.spec.render({ client: this.clientPort, leaf: this.leafPort }, this.storeDir));
    this.output = "";
    const child = spawn(this.binary, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    children.add(child);
    this.exit = new Promise((resolve) =>
      child.once("exit", () => {
        children.delete(child);
        resolve();
      }),
    );
    const onData = (d: Buffer) => (this.output += d.toString());
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const deadline = Date.now() + 15_000;
    while (!/Server is ready/.test(this.output)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new GatewayError("EGW_NATS_CONNECT", `nats-server ${this.spec.name} exited at start:\n${this.output}`);
      }
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new GatewayError("EGW_NATS_CONNECT", `nats-server ${this.spec.name} not ready after 15 s:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = /Listening for client connections on [^:]+:(\d+)/.exec(this.output);
    if (client) this.clientPort = Number(client[1]);
    const leaf = /Listening for leafnode connections on [^:]+:(\d+)/.exec(this.output);
    if (leaf) this.leafPort = Number(leaf[1]);
  }

  /** kill -9: no shutdown, the store is left as a crash leaves it. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child!.kill("SIGKILL");
    await this.exit;
  }

  /** SIGSTOP: the process keeps its sockets open but answers nothing (a hung leaf). */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** Starts again on the same ports and store (killing it first if it runs). */
  async restart(): Promise<void> {
    await this.kill9();
    await this.start();
  }

  /** Graceful stop (SIGKILL after 5 s), then removes its directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child!.kill("SIGTERM");
      this.child!.kill("SIGCONT"); // a paused server handles the SIGTERM only once continued
      const t = setTimeout(() => this.child?.kill("SIGKILL"), 5000);
      await this.exit;
      clearTimeout(t);
    }
    await rm(this.spec.dir, { recursive: true, force: true });
  }

  /** True when the log's last leafnode event is a connect (for leaves). */
  leafLinkUp(): boolean {
    return this.output.lastIndexOf("Leafnode connection created") > this.output.lastIndexOf("Leafnode connection closed");
  }
}

/** Config text of a plain JetStream server, optionally a hub with a leafnode listener. */
export function renderServerConfig(opts: { name: string; domain?: string; leafListener?: boolean; jetstream?: boolean }) {
  return (ports: Ports, storeDir: string): string => {
    const lines = [`server_name: ${JSON.stringify(opts.name)}`, `listen: "127.0.0.1:${ports.client}"`];
    if (opts.jetstream !== false) {
      lines.push(`jetstream { store_dir: ${JSON.stringify(storeDir)}${opts.domain ? `, domain: ${JSON.stringify(opts.domain)}` : ""} }`);
    }
    // The hub's INFO tells leaves its leafnode address, and a leaf adds it to its reconnect
    // list, so a leaf that reaches the hub through a proxy (demo, tests) would reconnect around
    // a cut proxy. `no_advertise` does not stop that on 2.9.10 (measured); advertising a dead
    // address does: the leaf tries it, fails at once, and returns to its configured URL.
    if (opts.leafListener) lines.push(`leafnodes { listen: "127.0.0.1:${ports.leaf}", advertise: "127.0.0.1:1" }`);
    return lines.join("\n") + "\n";
  };
}
