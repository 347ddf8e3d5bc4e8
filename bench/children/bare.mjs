// Bare-client baselines for `npm run bench`, each in its own process so that it is measured the
// way the daemon is (a process of its own, its RSS/CPU from /proc), with nothing of edge-gateway
// loaded. Plain JS (no tsx) so the process holds only node + the client library.
//
//   node bare.mjs js   <url> <inFlight>             js.publish loop, `inFlight` in flight, until SIGTERM
//   node bare.mjs core <url> <sensors> <everyMs>    core publishes of readings (ts = Date.now()) on
//                                                   `sensors` timers, like the simulated drivers
//   node bare.mjs sub  <url> <subject>              core subscriber: latency = receive − body.ts,
//                                                   per device token; `report` on stdin prints and resets
//   node bare.mjs mqtt <url> <topic> <count>        MQTT.js subscriber (QoS 1, persistent session):
//                                                   prints `ready`, then the seconds from the first to
//                                                   the `count`th message once all arrived, and
//                                                   the CPU seconds used in between
import { performance } from "node:perf_hooks";
import { connect } from "@nats-io/transport-node";

const [mode, url, a, b] = process.argv.slice(2);
const stop = new Promise((r) => process.once("SIGTERM", r));

if (mode === "js") {
  const { jetstream } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  let running = true;
  void stop.then(() => (running = false));
  let i = 0;
  const run = `${process.pid}`;
  const worker = async () => {
    while (running) {
      const n = i++;
      const body = JSON.stringify({ device: "bare", sensor: `t-${n % 50}`, type: "temperature", ts: Date.now(), value: 21.5, unit: "Cel", seq: n, quality: "good" });
      try {
        await js.publish(`sensors.temperature.eu-west.bare.t-${n % 50}`, body, { msgID: `bare.${run}.${n}` });
      } catch {
        // a timeout under load is counted by the stream count, not here
      }
    }
  };
  await Promise.all(Array.from({ length: Number(a) }, worker));
  await nc.close();
} else if (mode === "core") {
  const nc = await connect({ servers: url });
  const seq = new Array(Number(a)).fill(0);
  const timers = seq.map((_, s) =>
    setInterval(() => {
      const body = JSON.stringify({ device: "bare", sensor: `t-${s}`, type: "temperature", ts: Date.now(), value: 21.5, unit: "Cel", seq: seq[s]++, quality: "good" });
      nc.publish(`sensors.temperature.eu-west.bare.t-${s}`, body);
    }, Number(b)),
  );
  await stop;
  for (const t of timers) clearInterval(t);
  await nc.close();
} else if (mode === "sub") {
  const nc = await connect({ servers: url });
  let lat = new Map();
  nc.subscribe(a, {
    callback: (_e, m) => {
      const now = Date.now();
      const dev = m.subject.split(".")[3];
      let xs = lat.get(dev);
      if (!xs) lat.set(dev, (xs = []));
      xs.push(now - m.json().ts);
    },
  });
  await nc.flush();
  process.stdout.write("ready\n");
  let buf = "";
  process.stdin.on("data", (d) => {
    buf += d;
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) {
      if (buf.slice(0, i) !== "report") continue;
      const out = {};
      for (const [dev, xs] of lat) {
        xs.sort((x, y) => x - y);
        const p = (q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];
        out[dev] = { samples: xs.length, p50: p(0.5), p90: p(0.9), p99: p(0.99), max: xs[xs.length - 1] };
      }
      lat = new Map();
      process.stdout.write(JSON.stringify(out) + "\n");
    }
  });
  await stop;
  await nc.close();
} else if (mode === "mqtt") {
  const mqtt = await import("mqtt");
  const count = Number(b);
  const client = mqtt.connect(url, { clientId: "bench-bare", clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 600 } });
  let n = 0;
  let t0 = 0;
  let sum = 0;
  let c0;
  client.on("message", (_topic, payload) => {
    // As much work as a consumer that reads one value: parse the JSON.
    sum += JSON.parse(payload.toString()).DS18B20.Temperature;
    if (n++ === 0) {
      t0 = performance.now();
      c0 = process.cpuUsage();
    }
    if (n === count) {
      const c = process.cpuUsage(c0);
      process.stdout.write(`${(performance.now() - t0) / 1000} ${sum > 0} ${(c.user + c.system) / 1e6}\n`);
    }
  });
  client.on("connect", () => client.subscribe(a, { qos: 1 }, () => process.stdout.write("ready\n")));
  await stop;
  await client.endAsync();
} else {
  console.error(`bare.mjs: unknown mode ${mode}`);
  process.exit(1);
}
