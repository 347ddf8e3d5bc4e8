/**
 * `node --import tsx bench/security.ts`: live latency leaf → hub wildcard subscriber
 * (`sensors.>`), an open hub next to a fleet-auth hub, measured side by side in one run.
 * With auth, a hub subscriber's wide wildcard is not propagated to the leaf (the device may
 * publish only its own subjects); the readings cross because the hub's LATEST stream holds the
 * device's exact interest (src/cloud/live.ts). This measures what that costs, if anything.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect } from "@nats-io/transport-node";
import { addDeviceLive, ensureLiveStreams } from "../src/cloud/live.js";
import { startDemoHub } from "../src/demo/auth.js";
import { renderLeafConfig } from "../src/config/leaf-config.js";
import { validateBootstrap } from "../src/config/load.js";
import { NatsServerProcess } from "../src/demo/nats-server.js";

const N = process.argv.includes("--quick") ? 1000 : 5000;
const RATE = 1000; // per second
const DEVICE = "bench-pi";

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function run(auth: boolean): Promise<{ p50: number; p99: number; max: number; got: number }> {
  const dir = await mkdtemp(join(tmpdir(), `egw-bench-sec-${auth ? "auth" : "open"}-`));
  const servers: NatsServerProcess[] = [];
  try {
    const demoHub = await startDemoHub(dir, DEVICE, auth);
    servers.push(demoHub.hub);
    const hubNc = await connect({ servers: demoHub.hub.url, ...demoHub.connectOpts });
    await ensureLiveStreams(hubNc);
    await addDeviceLive(hubNc, DEVICE);
    const v = validateBootstrap({ device: { id: DEVICE, region: "eu-west" } });
    if (!v.ok) throw new Error("bootstrap");
    const leaf = new NatsServerProcess({
      name: "leaf",
      dir: join(dir, "leaf"),
      render: (p, storeDir) => renderLeafConfig(v.value, { hub: demoHub.hub.leafUrl, listen: `127.0.0.1:${p.client}`, storeDir, monitor: false, creds: demoHub.deviceCreds }),
    });
    servers.push(leaf);
    await leaf.start();
    const lat: number[] = [];
    hubNc.subscribe("sensors.>", { callback: (_e, m) => void lat.push(performance.now() - Number(m.string())) });
    await hubNc.flush();
    const leafNc = await connect({ servers: leaf.url });
    // Wait until the interest reached the leaf: a probe arrives.
    const deadline = Date.now() + 20_000;
    while (lat.length === 0) {
      if (Date.now() > deadline) throw new Error("no reading arrived at the hub");
      leafNc.publish(`sensors.temperature.eu-west.${DEVICE}.probe`, String(performance.now()));
      await new Promise((r) => setTimeout(r, 100));
    }
    lat.length = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      leafNc.publish(`sensors.temperature.eu-west.${DEVICE}.s${i % 10}`, String(performance.now()));
    }
    await leafNc.flush();
    const end = Date.now() + 5000;
    while (lat.length < N && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    await leafNc.close();
    await hubNc.close();
    return { p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), got: lat.length };
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (r: { p50: number; p99: number; max: number; got: number }) => `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(1)} ms (${r.got}/${N} received)`;
for (let round = 1; round <= 2; round++) {
  const open = await run(false);
  const auth = await run(true);
  console.log(`round ${round}: open hub ${fmt(open)} | fleet auth ${fmt(auth)}`);
}
