import { readFile } from "node:fs/promises";
import { parseSize } from "../config/units.js";
import { ensureHubConfigBucket, HUB_DEFAULTS, listDevices, type Change } from "../cloud/hub.js";
import { ensureFleet, layoutOrDefault, reconcileSources, registerDevices, registeredDevices, shardStreams, unregisterDevices, type Registration } from "../cloud/fleet.js";
import { GatewayError, errorMessage } from "../errors.js";
import { connectServer, serverFlags, serverUrl } from "./connect.js";
import { deviceIdArg, durationFlag, EXIT, parse, reportError, UsageError, type Command, type Io } from "./command.js";
import { ingest } from "./ingest.js";
import { gaps, history, latest } from "./query.js";
import { hubConfig } from "./hub-config.js";
import { defaultKeysDir } from "../cloud/auth.js";
import { issueDeviceCredsFile, revokeDeviceCreds } from "../cloud/device-creds.js";
import { hubVersionWarning } from "../cloud/hub-config.js";
import { ensureLiveStreams } from "../cloud/live.js";

const usage = `Usage: edge-gateway cloud <subcommand> [options] --server URL[,URL…]

Hub-side set-up (idempotent: running a command twice changes nothing the second time).

  cloud hub-config [--keys DIR] [--cluster NAME --routes URLS]
      prints the hub's nats-server config with fleet auth (\`edge-gateway cloud hub-config --help\`)
  cloud init [--stream NAME] [--bucket NAME] [--max-bytes SIZE] [--max-age DURATION]
             [--replicas N] [--shards K]
      creates the hub stream(s) (no own subjects; they source the devices' leaf streams), the
      config KV bucket, the fleet registry and the streams LATEST and EVENTS (live readings and
      events), all with N replicas. --shards K spreads devices over K streams NAME-0…NAME-(K-1)
      by a stable hash of the device id (fixed once set)
  cloud add-device ID… [--from FILE] [--creds-out FILE] [--keys DIR]
      registers devices (one id per line in FILE, '-' = stdin; # comments), sources each from
      its shard stream and adds its live subjects. Safe to run concurrently. With --creds-out
      (one device), issues its own credential (leaf link, permissions for this device only)
  cloud remove-device ID… [--from FILE] [--keys DIR]
      unregisters them and drops their sources (the readings already stored stay) and revokes
      their credentials: the hub drops their links and refuses them from then on
  cloud reconcile
      sets every hub stream's sources from the registry again (after a hand edit, or an
      interrupted add-device)
  cloud devices [--json]
      lists the registered devices with their stream, how far behind each is (lag) and when
      the hub last heard from it
  cloud ingest --queue NAME [--sink sqlite:FILE|postgres://…|jsonl:FILE] [--filter SUBJECT] [--live]
      a worker storing readings exactly once in a database (or as JSON lines); workers with
      the same queue share the work (\`edge-gateway cloud ingest --help\`)
  cloud history DEVICE SENSOR --db DB [--since 1h] [--until TIME] [--json|--csv]
  cloud latest --db DB [--region R] [--type T]
  cloud gaps --db DB [--device D] [--since TIME] [--queue NAME]
      queries on the ingest database: one sensor's readings, the last reading per sensor,
      the completeness audit (missing seqs per device and sensor)

Common options: --server URL (repeatable or comma-separated: every hub node; default $NATS_URL
or nats://127.0.0.1:4222), --creds FILE (with fleet auth: DIR/ops.creds), --keys DIR (default
$EDGE_GATEWAY_KEYS or ~/.config/edge-gateway/fleet)`;

function printChange(out: (t: string) => void, c: Change): void {
  out(`${c.result}: ${c.detail}`);
}

function warnOldHub(version: string | undefined, err: (t: string) => void): void {
  const w = version ? hubVersionWarning(version) : undefined;
  if (w) err(w);
}

/** Device ids from the positionals and --from FILE ('-' = stdin), each checked, duplicates dropped. */
async function deviceIds(positionals: string[], from: string | undefined, sub: string): Promise<string[]> {
  const ids = [...positionals];
  if (from !== undefined) {
    let text: string;
    try {
      text = from === "-" ? await readStdin() : await readFile(from, "utf8");
    } catch (cause) {
      throw new GatewayError("EGW_CONFIG_READ", `cannot read --from ${from}: ${errorMessage(cause)}`, { cause });
    }
    text.split(/\r?\n/).forEach((line, i) => {
      const id = line.replace(/#.*/, "").trim();
      if (!id) return;
      try {
        ids.push(deviceIdArg(id, ""));
      } catch (err) {
        throw new UsageError(`${from}:${i + 1}: ${errorMessage(err)}`);
      }
    });
  }
  if (ids.length === 0) throw new UsageError(`give the device id(s), e.g. \`edge-gateway cloud ${sub} pi-0042 pi-0043\` or --from FILE`);
  return [...new Set(ids.map((id) => deviceIdArg(id, `edge-gateway cloud ${sub} pi-0042`)))];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function printRegistration(io: Io, r: Registration): void {
  const what = { added: "added", unchanged: "unchanged", removed: "removed", absent: "absent" }[r.result];
  const note = r.result === "unchanged" ? " (already registered)" : r.result === "absent" ? " (was not registered)" : "";
  io.out(`${what}: device ${r.device} → stream ${r.stream}${note}`);
}

export const cloud: Command = {
  usage,
  async run(argv, io) {
    const sub = { ingest, history, latest, gaps, "hub-config": hubConfig }[argv[0] ?? ""];
    if (sub) return sub.run(argv.slice(1), io);
    try {
      const { values, positionals } = parse(
        argv,
        {
          ...serverFlags,
          stream: { type: "string" },
          bucket: { type: "string" },
          "max-bytes": { type: "string" },
          "max-age": { type: "string" },
          replicas: { type: "string" },
          shards: { type: "string" },
          from: { type: "string" },
          json: { type: "boolean" },
          keys: { type: "string" },
          "creds-out": { type: "string" },
        },
        true,
      );
      const sub = positionals[0];
      if (values.help || !sub) {
        io.out(usage);
        return values.help ? EXIT.ok : EXIT.invalid;
      }
      if (!["init", "add-device", "remove-device", "devices", "reconcile"].includes(sub)) throw new UsageError(`unknown subcommand cloud ${sub}`);
      const ids = sub === "add-device" || sub === "remove-device" ? await deviceIds(positionals.slice(1), values.from, sub) : [];
      const maxBytes = values["max-bytes"] === undefined ? undefined : parseSize(values["max-bytes"]);
      if (values["max-bytes"] !== undefined && maxBytes === undefined) throw new UsageError(`--max-bytes ${values["max-bytes"]}: write a size like 10GiB`);
      const maxAgeMs = durationFlag("--max-age", values["max-age"], "30d");
      const replicas = values.replicas === undefined ? undefined : Number(values.replicas);
      if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) throw new UsageError("--replicas must be 1 to 5");
      const shards = values.shards === undefined ? undefined : Number(values.shards);
      if (shards !== undefined && !(Number.isInteger(shards) && shards >= 1 && shards <= 1000)) throw new UsageError("--shards must be 1 to 1000");

      const nc = await connectServer(values.server, values.creds);
      try {
        switch (sub) {
          case "init":
            for (const c of await ensureFleet(nc, { stream: values.stream, shards, maxBytes, maxAgeMs, replicas })) printChange(io.out, c);
            printChange(io.out, await ensureHubConfigBucket(nc, { bucket: values.bucket, replicas }));
            for (const c of await ensureLiveStreams(nc, { replicas })) printChange(io.out, c);
            warnOldHub(nc.info?.version, io.err);
            break;
          case "add-device":
            if (values["creds-out"] && ids.length > 1) throw new UsageError("--creds-out writes one device's credential: give one device id with it");
            for (const r of await registerDevices(nc, ids)) {
              printRegistration(io, r);
              // Per device, after its source and live subjects exist (reconciled from the registry): its credential.
              if (values["creds-out"]) io.out(await issueDeviceCredsFile(values.keys ?? defaultKeysDir(), r.device, values["creds-out"]));
            }
            break;
          case "remove-device":
            for (const r of await unregisterDevices(nc, ids)) {
              printRegistration(io, r);
              io.out(await revokeDeviceCreds(values.keys ?? defaultKeysDir(), r.device, serverUrl(values.server)));
            }
            break;
          case "reconcile":
            for (const r of await reconcileSources(nc)) io.out(`${r.stream}: ${r.sources} sources (${r.added} added, ${r.removed} removed)`);
            break;
          case "devices": {
            const layout = await layoutOrDefault(nc, values.stream ?? HUB_DEFAULTS.stream);
            const sourced = await listDevices(nc, { streams: shardStreams(layout) });
            // Registered but not (yet) sourced: an interrupted add-device; `cloud reconcile` fixes it.
            const registered = await registeredDevices(nc).catch(() => [] as string[]);
            const seen = new Set(sourced.map((d) => d.device));
            const missing = registered.filter((id) => !seen.has(id)).map((device) => ({ device, stream: "-", lag: 0, lastActiveMs: undefined, error: "registered, not sourced: run `edge-gateway cloud reconcile`" }));
            const devices = [...sourced, ...missing];
            if (values.json) io.out(JSON.stringify(devices));
            else if (devices.length === 0) io.out("no devices: add one with `edge-gateway cloud add-device ID`");
            else {
              io.out(`${"DEVICE".padEnd(24)} ${"STREAM".padEnd(14)} ${"LAG".padStart(10)}  LAST ACTIVE  ERROR`);
              for (const d of devices) {
                const active = d.lastActiveMs === undefined ? "never" : `${(d.lastActiveMs / 1000).toFixed(1)}s ago`;
                io.out(`${d.device.padEnd(24)} ${d.stream.padEnd(14)} ${String(d.lag).padStart(10)}  ${active.padEnd(11)}  ${d.error ?? ""}`);
              }
            }
            break;
          }
        }
      } finally {
        await nc.close();
      }
      return EXIT.ok;
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
