// The whole daemon (dist/) with one MQTT subscription, for `npm run bench`: MQTT → runner →
// publisher → the leaf's PubAck → only then the broker's PUBACK (issue 18). Same protocol as
// `mqtt-ingest.mjs` (prints `ready` once the ingest connected, then the seconds from the first
// to the `count`th reading *stored in the leaf stream*).
//
//   node mqtt-daemon.mjs <mqtt-url> <topic> <count> <nats-url> <state-dir>
import { performance } from "node:perf_hooks";
import { validateBootstrap } from "../../dist/config/index.js";
import { Daemon } from "../../dist/daemon/daemon.js";
import { silentLogger } from "../../dist/logger.js";

const [url, topic, count, nats, state] = process.argv.slice(2);
const v = validateBootstrap({
  device: { id: "bench-pi", region: "lab" },
  nats: { servers: [nats] },
  remoteConfig: false,
  http: false,
  state,
  sensors: [],
  mqtt: { url, clientId: "bench-daemon", subscriptions: [{ topic, type: "temperature", id: "tasmota-{1}", valuePath: "DS18B20.Temperature", unit: "Cel" }] },
});
if (!v.ok) throw new Error(JSON.stringify(v.problems));
const daemon = await Daemon.start({ config: v.value, logger: silentLogger() });
const want = Number(count);
let t0 = 0;
let said = false;
const timer = setInterval(() => {
  const c = daemon.mqtt?.counters;
  if (!said && c && c.connects > 0) {
    said = true;
    process.stdout.write("ready\n");
  }
  const stored = daemon.publisher.stats.published;
  if (t0 === 0 && stored > 0) t0 = performance.now();
  if (stored >= want) {
    clearInterval(timer);
    process.stdout.write(`${(performance.now() - t0) / 1000} true\n`);
  }
}, 1);
process.once("SIGTERM", () => {
  clearInterval(timer);
  void daemon.stop().then(() => process.exit(0));
});
