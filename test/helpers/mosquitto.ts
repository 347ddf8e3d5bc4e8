/**
 * A real Mosquitto broker for tests: the Debian `/usr/sbin/mosquitto` binary with a generated
 * config in a temp dir, listening on a free loopback port (never the machine's shared 1883),
 * with persistence in the temp dir so that `restart()` keeps sessions, subscriptions and queued
 * messages, and comes back on the same port.
 */
import { writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { startProc, stopProc, tempDir, type Proc } from "./procs.js";
import { delay } from "../../src/drivers/util.js";
import { waitFor } from "./wait.js";

export const MOSQUITTO_BIN = "/usr/sbin/mosquitto";

export interface Mosquitto {
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string;
  readonly dir: string;
  /** Whether the broker process is currently running. */
  running(): boolean;
  /** Broker log so far (all runs). */
  log(): string;
  /** Graceful stop (SIGTERM: Mosquitto writes its persistence file), then start on the same port. */
  restart(): Promise<void>;
  /** Stops the broker (SIGTERM, saves persistence) without starting it again. */
  stop(): Promise<void>;
  /** Starts a stopped broker again on the same port and store. */
  start(): Promise<void>;
  /** Stops the broker for good. Safe to call twice. */
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bind to 0, read it, release it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** Extra mosquitto.conf lines (e.g. `queue_qos0_messages true`). */
  extraConfig?: string[];
  /** Require these username → password logins (password file made with mosquitto_passwd). */
  users?: Record<string, string>;
}

/** Starts Mosquitto; call `close()` in afterEach/afterAll (and `cleanupTempDirs()` for the dir). */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await tempDir("egw-mosquitto-");
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  const passwordFile = join(dir, "passwd");
  if (opts.users) {
    await writeFile(passwordFile, "", { mode: 0o600 });
    for (const [user, password] of Object.entries(opts.users)) {
      const p = startProc("/usr/bin/mosquitto_passwd", ["-b", passwordFile, user, password]);
      if ((await p.exited) !== 0) throw new Error(`mosquitto_passwd failed: ${p.stderr()}`);
    }
  }
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(opts.users ? ["allow_anonymous false", `password_file ${passwordFile}`] : ["allow_anonymous true"]),
      // Tests run as root here; without this Mosquitto drops to user `mosquitto`, which cannot
      // write the persistence file in our private temp dir.
      "user root",
      "persistence true",
      `persistence_location ${dir}/`,
      "persistence_file mosquitto.db",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      ...(opts.extraConfig ?? []),
      "",
    ].join("\n"),
  );

  let proc: Proc | undefined;
  let logs = "";
  let closed = false;

  const start = async () => {
    if (closed) throw new Error("mosquitto helper already closed");
    for (let attempt = 0; ; attempt++) {
      const p = startProc(MOSQUITTO_BIN, ["-c", conf]);
      proc = p;
      const up = await waitFor(
        async () => (p.child.exitCode !== null || p.child.signalCode !== null ? "exited" : (await canConnect(port)) ? "up" : undefined),
        { timeout: 10_000, what: `mosquitto listening on 127.0.0.1:${port}`, interval: 50 },
      ).catch(async (err: unknown) => {
        await stopProc(p); // never leave a half-started broker behind
        throw err;
      });
      if (up === "up") return;
      logs += p.stderr();
      // A restart may briefly find the port still in TIME_WAIT use; retry a few times.
      if (attempt >= 20) throw new Error(`mosquitto failed to start on port ${port}:\n${p.stderr()}`);
      await delay(100); // back-off between start attempts, not synchronisation
    }
  };

  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p) return;
    await stopProc(p);
    logs += p.stderr();
  };

  await start();

  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    running: () => proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null,
    log: () => logs + (proc?.stderr() ?? ""),
    restart: async () => {
      await stop();
      await start();
    },
    stop,
    start,
    close: async () => {
      closed = true;
      await stop();
    },
  };
}
