/**
 * Hostile input pushed remotely, against a real hub + leaf and the daemon (issue 18): a config
 * push with a catastrophic pattern is rejected with its path, and the daemon keeps publishing
 * and answering. Readings taken before the clock is synchronised are `uncertain` (DESIGN A2).
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { requestGateway } from "../../src/cloud/control-client.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import type { GatewayStatus } from "../../src/daemon/status.js";
import { cleanupNats } from "../helpers/nats.js";
import { cleanupTempDirs, killAll } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { bootstrap, DEVICE, KEY, sim, startDaemon, startEnv, type Env } from "../remote-config/setup.js";

let env: Env | undefined;
const daemons: Daemon[] = [];
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  await env?.close();
  env = undefined;
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("hostile input › remote config", () => {
  it("a pushed (a+)+$ pattern is rejected with its path; the daemon keeps publishing and answers status", async () => {
    env = await startEnv();
    const b = await bootstrap(env.net.leaves[0]!.url);
    const daemon = await startDaemon({ config: b.cfg });
    daemons.push(daemon);
    await env.obs.more("alpha", 3);

    const evil = { id: "meter", type: "energy", driver: "serial-lines", port: "/dev/ttyUSB7", format: "regex", pattern: "^(?<value>(a+)+)$" };
    const rev = await env.kv.put(KEY, JSON.stringify({ sensors: [sim("alpha"), sim("beta"), evil] }));
    const ev = await env.obs.event(rev);
    expect(ev.status).toBe("rejected");
    expect(ev.errors).toContainEqual({ path: "sensors[2].pattern", message: expect.stringMatching(/nests a quantifier/) });
    expect(daemon.sensors().map((r) => r.config.id).sort()).toEqual(["alpha", "beta"]);

    await env.obs.more("alpha", 5);
    const s = await requestGateway<GatewayStatus>(env.hubNc, DEVICE, "status");
    expect(s.device).toBe(DEVICE);
    expect(s.sensors.map((x) => x.id).sort()).toEqual(["alpha", "beta"]);
  });

  it("readings are uncertain until the clock is synchronised, then good", async () => {
    env = await startEnv();
    const qualities: string[] = [];
    env.leafNc.subscribe("sensors.>", { callback: (_e, m) => void qualities.push(m.json<{ quality: string }>().quality) });
    const b = await bootstrap(env.net.leaves[0]!.url, { sensors: [{ ...sim("alpha"), driver: "simulated" as const }] });
    let synced = false;
    const daemon = await startDaemon({ config: b.cfg, clockProbe: async () => synced });
    daemons.push(daemon);
    await waitFor(() => qualities.length >= 3, { timeout: 15_000, what: "three readings" });
    expect(new Set(qualities)).toEqual(new Set(["uncertain"]));
    synced = true;
    // The daemon probes every 10 s until synchronised.
    await waitFor(() => qualities.at(-1) === "good", { timeout: 30_000, what: "a good reading after the clock synchronised" });
    const firstGood = qualities.indexOf("good");
    expect(qualities.slice(firstGood).every((q) => q === "good")).toBe(true);
  });
});
