/**
 * A real PostgreSQL server for tests (Debian's `postgresql` package): `initdb` into a temp dir,
 * `postgres` on a free loopback port, trust authentication for the `egw` superuser. PostgreSQL
 * refuses to run as root, so under root the data dir is chowned to the `postgres` user (or
 * `nobody`) and the server runs as that user. `stop()` / `start()` stop and restart it on the
 * same data and port (a database outage); `cleanupPostgres()` removes everything, also after a
 * failed test.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { startProc, tempDir, type Proc } from "./procs.js";
import { waitFor } from "./wait.js";

/** The bin directory of the newest installed PostgreSQL major version. */
export function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres"))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error("PostgreSQL is not installed: apt-get install postgresql (see scripts/ensure-deps.sh)");
  return join(root, versions[0]!, "bin");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

function runAsUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
      const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
      return { uid, gid };
    } catch {
      // try the next user
    }
  }
  throw new Error("running as root, and neither the postgres nor the nobody user exists to run PostgreSQL as");
}

const running = new Set<PostgresServer>();

export class PostgresServer {
  proc: Proc | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly user: { uid: number; gid: number } | undefined,
    private readonly fsync: boolean,
  ) {}

  /** `postgres://egw@127.0.0.1:PORT/egw` (trust auth, loopback only). */
  get url(): string {
    return `postgres://egw@127.0.0.1:${this.port}/egw`;
  }

  /** initdb + start + `CREATE DATABASE egw`. `fsync: true` (for benchmarks) keeps PostgreSQL's default durability. */
  static async create(opts: { fsync?: boolean } = {}): Promise<PostgresServer> {
    const bin = postgresBin();
    const dir = await tempDir("egw-pg-");
    const user = runAsUser();
    if (user) {
      await chown(dir, user.uid, user.gid);
      await chmod(dir, 0o700);
    }
    const data = join(dir, "data");
    const init = startProc(join(bin, "initdb"), ["-D", data, "-U", "egw", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], { ...(user ?? {}), cwd: dir });
    const code = await init.exited;
    if (code !== 0) throw new Error(`initdb failed (${code}): ${init.stderr()}`);
    const pg = new PostgresServer(dir, await freePort(), user, opts.fsync ?? false);
    running.add(pg);
    try {
      await pg.start();
      const create = startProc(join(bin, "psql"), ["-h", "127.0.0.1", "-p", String(pg.port), "-U", "egw", "-d", "postgres", "-c", "CREATE DATABASE egw"]);
      if ((await create.exited) !== 0) throw new Error(`CREATE DATABASE failed: ${create.stderr()}`);
    } catch (e) {
      await pg.destroy();
      throw e;
    }
    return pg;
  }

  /** Starts the server on its data dir and port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const bin = postgresBin();
    // fsync off in tests: they exercise our transactions and acks, not PostgreSQL's own durability.
    this.proc = startProc(
      join(bin, "postgres"),
      ["-D", join(this.dir, "data"), "-p", String(this.port), "-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${this.dir}`, "-c", `fsync=${this.fsync ? "on" : "off"}`, "-c", "max_connections=50"],
      { ...(this.user ?? {}), cwd: this.dir },
    );
    const p = this.proc;
    await waitFor(
      async () => {
        if (p.child.exitCode !== null) throw new Error(`postgres exited: ${p.stderr()}`);
        const ready = startProc(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(this.port), "-t", "1"]);
        return (await ready.exited) === 0;
      },
      { timeout: 30_000, interval: 100, what: `postgres on port ${this.port} to accept connections` },
    );
  }

  /** Fast shutdown (SIGINT: disconnects clients, aborts their transactions); resolves once it exited. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    p.kill("SIGINT");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await p.exited;
    clearTimeout(t);
  }

  /** Stops the server; its temp dir is removed by cleanupTempDirs(). */
  async destroy(): Promise<void> {
    running.delete(this);
    await this.stop();
  }
}

/** Stops every PostgreSQL server started by this module (for afterAll). */
export async function cleanupPostgres(): Promise<void> {
  await Promise.all([...running].map((s) => s.destroy()));
}
