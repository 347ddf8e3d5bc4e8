// The MQTT ingest of the built gateway (dist/) on its own, for `npm run bench`: the same protocol
// as `bare.mjs mqtt` (prints `ready` once subscribed, then the seconds from the first to the
// `count`th reading and the CPU seconds this process used in between), so the two are measured
// the same way.
//
//   node mqtt-ingest.mjs <url> <topic> <count>
import { performance } from "node:perf_hooks";
import { mqttSchema } from "../../dist/config/schema.js";
import { createMqttIngest } from "../../dist/bridge/mqtt-ingest.js";
import { silentLogger } from "../../dist/logger.js";

const [url, topic, count] = process.argv.slice(2);
const cpuSecs = (c0) => { const c = process.cpuUsage(c0); return (c.user + c.system) / 1e6; };
const config = mqttSchema.parse({
  url,
  clientId: "bench-ingest",
  subscriptions: [{ topic, type: "temperature", id: "tasmota-{1}", valuePath: "DS18B20.Temperature", unit: "Cel" }],
});
const ac = new AbortController();
process.once("SIGTERM", () => ac.abort());
const ingest = createMqttIngest(config, {
  logger: silentLogger(),
  deviceId: "bench-pi",
  report: (h) => {
    if (h.state === "ok") process.stdout.write("ready\n");
  },
});
let n = 0;
let t0 = 0;
let sum = 0;
let c0;
for await (const r of ingest.start(ac.signal)) {
  sum += r.value;
  if (n++ === 0) {
    t0 = performance.now();
    c0 = process.cpuUsage();
  }
  if (n === Number(count)) process.stdout.write(`${(performance.now() - t0) / 1000} ${sum > 0} ${cpuSecs(c0)}\n`);
}
await ingest.close();
