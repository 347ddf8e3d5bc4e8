import { afterAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { silentLogger } from "../../src/logger.js";
import { SystemdSupervisor, statusLine, watchdogIntervalMs, type SdNotifier, type SupervisedState } from "../../src/daemon/sd-notify.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, startProc, stopProc, tempDir, type Proc } from "../helpers/procs.js";
import { spawnCli } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";

afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

/** A unix datagram socket printing each datagram as one line (newlines shown as `|`). */
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)
`;

async function notifySocket(): Promise<{ path: string; proc: Proc; messages: () => string[] }> {
  const dir = await tempDir("egw-notify-");
  const path = join(dir, "notify");
  const proc = startProc("python3", ["-c", RECEIVER, path]);
  await waitFor(() => proc.stdout().includes("listening"), { what: "notify socket bound" });
  return { path, proc, messages: () => proc.stdout().split("\n").slice(1).filter(Boolean) };
}

describe("systemd notify › through $NOTIFY_SOCKET", () => {
  it("`edge-gateway run` sends READY=1, WATCHDOG=1 every WATCHDOG_USEC/2 with STATUS=, and STOPPING=1 on SIGTERM", async () => {
    const leaf = await startJetStreamServer("leaf");
    const sock = await notifySocket();
    const dir = await tempDir("egw-run-");
    const config = join(dir, "gateway.yaml");
    await writeFile(
      config,
      [
        "device: { id: pi-sd, region: eu-west }",
        `nats: { servers: ["${leaf.url}"] }`,
        "remoteConfig: false",
        "http: false",
        `state: ${join(dir, "state")}`,
        "log: { level: warn }",
        "sensors:",
        "  - { id: t1, type: temperature, driver: simulated, interval: 200ms }",
        "  - { id: t2, type: temperature, driver: simulated, interval: 200ms }",
      ].join("\n"),
    );
    const daemon = spawnCli(["run", "--config", config], { env: { ...process.env, NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "600000" } });
    try {
      await waitFor(() => sock.messages().some((m) => m.startsWith("READY=1")), { what: "READY=1", timeout: 20_000 });
      await waitFor(() => sock.messages().filter((m) => m.startsWith("WATCHDOG=1")).length >= 3, { what: "three WATCHDOG=1 pings", timeout: 20_000 });
      await waitFor(() => sock.messages().some((m) => m.includes("STATUS=publishing: 2 sensors, link ")), { what: "STATUS publishing", timeout: 20_000 });
      const ready = sock.messages().find((m) => m.startsWith("READY=1"))!;
      expect(ready).toMatch(/^READY=1\|STATUS=(publishing|local leaf unreachable|leaf stream not ready): 2 sensors, link \w+, \d+ queued/);
    } finally {
      await stopProc(daemon, 20_000);
    }
    expect(await daemon.exited).toBe(0);
    await waitFor(() => sock.messages().some((m) => m.startsWith("STOPPING=1")), { what: "STOPPING=1" });
    await stopProc(sock.proc);
  });

  it("is a no-op without NOTIFY_SOCKET; WATCHDOG_PID of another process disables the watchdog", async () => {
    const s = new SystemdSupervisor({ logger: silentLogger(), env: {}, state: () => state() });
    expect(s.notifier.enabled).toBe(false);
    await s.ready();
    await s.stopping();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" })).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(process.pid + 1) })).toBeUndefined();
    expect(watchdogIntervalMs({})).toBeUndefined();
  });

  it("withholds WATCHDOG=1 only when the publisher is connected with a backlog and no PubAck progress for stallMs", () => {
    const notifier: SdNotifier = { enabled: true, notify: async () => true };
    const s = new SystemdSupervisor({ logger: silentLogger(), env: { NOTIFY_SOCKET: "/x", WATCHDOG_USEC: "1000000" }, notifier, stallMs: 1000, state: () => state() });
    const t = 1_000_000;
    // Leaf down with a growing queue: a restart would not help (and would lose the queue).
    expect(s.stalled(state({ healthy: false, leafConnected: false, queued: 500 }), t)).toBe(false);
    expect(s.stalled(state({ healthy: false, leafConnected: false, queued: 900 }), t + 5000)).toBe(false);
    // Healthy and acking: progress.
    expect(s.stalled(state({ queued: 10, published: 1 }), t + 6000)).toBe(false);
    expect(s.stalled(state({ queued: 10, published: 2 }), t + 6500)).toBe(false);
    // Healthy, a backlog, no ack for longer than stallMs: stalled.
    expect(s.stalled(state({ queued: 10, published: 2 }), t + 7000)).toBe(false);
    expect(s.stalled(state({ queued: 10, published: 2 }), t + 7600)).toBe(true);
    // Idle (nothing queued) is never stalled.
    expect(s.stalled(state({ queued: 0, inFlight: 0, published: 2 }), t + 20_000)).toBe(false);
    expect(statusLine(state({ queued: 3, inFlight: 2 }))).toBe("publishing: 2 sensors, link up, 5 queued");
    expect(statusLine(state({ healthy: false, leafConnected: false, queued: 1234, sensors: 1, hub: "unknown" }))).toBe("local leaf unreachable: 1 sensor, link unknown, 1234 queued");
  });
});

function state(over: Partial<SupervisedState> = {}): SupervisedState {
  return { healthy: true, leafConnected: true, queued: 0, inFlight: 0, published: 0, sensors: 2, hub: "up", ...over };
}

describe("systemd watchdog › a publish stall keeps the queue (issue 18)", () => {
  it("before withholding WATCHDOG=1 on a stall, the daemon writes what it holds (with seqs) to held.json", async () => {
    const { Daemon } = await import("../../src/daemon/daemon.js");
    const { validateBootstrap } = await import("../../src/config/index.js");
    const { readFile } = await import("node:fs/promises");
    const server = await startJetStreamServer();
    const state = await tempDir();
    const v = validateBootstrap({ device: { id: "pi-wd", region: "eu-west" }, nats: { servers: [server.url] }, remoteConfig: false, http: false, state, sensors: [{ id: "a", type: "temperature", driver: "simulated", interval: "10ms" }] });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const sent: Record<string, string | number>[] = [];
    const notifier: SdNotifier = { enabled: true, notify: async (f) => (sent.push(f), true) };
    const daemon = await Daemon.start({ config: v.value, logger: silentLogger(), operations: { env: { NOTIFY_SOCKET: "/x", WATCHDOG_USEC: "400000" }, notifier, stallMs: 600 } });
    try {
      await waitFor(() => daemon.publisher.stats.published >= 5, { what: "readings published" });
      // The leaf hangs: connected, readings in flight, no PubAck.
      server.signal("SIGSTOP");
      await waitFor(() => sent.some((f) => String(f.STATUS ?? "").startsWith("stalled")), { what: "the stall seen", timeout: 15_000 });
      const file = JSON.parse(await readFile(join(state, "held.json"), "utf8")) as { readings: { seq?: number; reading: { sensor: string } }[] };
      expect(file.readings.length).toBeGreaterThan(0);
      expect(file.readings.every((r) => r.reading.sensor === "a" && Number.isInteger(r.seq))).toBe(true);
      // From the stall on, no WATCHDOG=1 is sent.
      const at = sent.findIndex((f) => String(f.STATUS ?? "").startsWith("stalled"));
      expect(sent.slice(at).some((f) => f.WATCHDOG === 1)).toBe(false);
    } finally {
      server.signal("SIGCONT");
      await daemon.stop();
    }
  });
});
