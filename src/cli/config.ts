/**
 * `edge-gateway config push|get|history`: operators' side of remote configuration (DESIGN A6,
 * A7). Talks to the hub's KV bucket directly; the device picks changes up through its mirror.
 */
import { readFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/nats-core";
import { Kvm, type KV } from "@nats-io/kv";
import { CONFIG_BUCKET, deviceKey } from "../bridge/remote-config-bucket.js";
import { parseYaml, validateDocument } from "../config/load.js";
import { ConfigError, GatewayError, errorMessage } from "../errors.js";
import { deviceIdArg, EXIT, parse, reportError, UsageError, type Command, type Io } from "./command.js";
import { connectServer, serverUrl } from "./connect.js";

const usage = `Usage: edge-gateway config push ID FILE [--server URL] [options]
       edge-gateway config get ID [--server URL] [--revision N] [--json]
       edge-gateway config history ID [--server URL] [--json]

Remote configuration of device ID: its document lives in the hub's KV bucket under
devices.ID; the device applies every new revision live (see docs/remote-config.md).

  push      validates FILE (JSON or YAML) as a whole: every problem is printed with its path
            and nothing is written (exit 1). Otherwise writes it as JSON and prints the new
            revision.
  get       prints the current document (stdout) and its revision (stderr; with --json one
            object {revision, created, document} on stdout); --revision N prints an older one
            kept in the history (to roll back: get it into a file, then push that file).
  history   lists the kept revisions: revision, time, operation, size.

Options:
  --server URL            the hub's client URL, e.g. nats://hub.example.com:4222 (repeat or comma-separate for every node)
                          (default $NATS_URL, else nats://127.0.0.1:4222)
  --creds FILE            credentials file for the hub
  --bucket NAME           KV bucket (default ${CONFIG_BUCKET})
  --expect-revision N     push: fail (exit 1) unless the document is still at revision N
                          (0: unless the device has no document yet)
  --revision N            get: that revision instead of the current one
  --json                  get/history: machine-readable output

Exit codes: 0 ok, 1 invalid document / revision conflict / no such document,
            2 cannot reach the hub or the bucket does not exist.`;

const options = {
  server: { type: "string", short: "s", multiple: true },
  creds: { type: "string" },
  bucket: { type: "string" },
  "expect-revision": { type: "string" },
  revision: { type: "string" },
  json: { type: "boolean" },
} as const;

/** Binds the hub bucket; a missing one is EGW_NATS_SERVER_MISSING (exit 2) with the fix. */
async function openBucket(nc: NatsConnection, bucket: string, server: string): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    const kv = await kvm.open(bucket);
    await kv.status();
    return kv;
  } catch (cause) {
    const msg = errorMessage(cause);
    if (/not found/i.test(msg)) {
      throw new GatewayError("EGW_NATS_SERVER_MISSING", `the hub at ${server} has no KV bucket ${JSON.stringify(bucket)}: create it with \`edge-gateway cloud init --server ${server}\``, { cause });
    }
    if (/jetstream not enabled|no responders/i.test(msg)) {
      throw new GatewayError("EGW_NATS_SERVER_MISSING", `the server at ${server} has no JetStream: point --server at the hub`, { cause });
    }
    throw new GatewayError("EGW_NATS_CONNECT", `cannot open KV bucket ${bucket} on ${server}: ${msg}`, { cause });
  }
}

function parseRevision(text: string | undefined, flag = "--expect-revision"): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a revision number (0 or more), not ${JSON.stringify(text)}`);
  return n;
}

/** A conflict or refused write: invalid input for the user (exit 1), not an outage. */
class PushRefused extends GatewayError {
  constructor(message: string, cause?: unknown) {
    super("EGW_CONFIG_INVALID", message, { cause });
    this.name = "PushRefused";
  }
}

/** Reads and validates a document file as a whole; throws ConfigError listing every problem. */
async function readDocument(file: string): Promise<{ input: unknown; sensors: number }> {
  const text = await readFile(file, "utf8").catch((cause: unknown) => {
    throw new GatewayError("EGW_CONFIG_READ", `cannot read ${file}: ${errorMessage(cause)}`, { cause });
  });
  const parsed = parseYaml(text);
  if (!parsed.ok) throw new ConfigError(`${file} (nothing was written)`, parsed.problems);
  const v = validateDocument(parsed.value);
  if (!v.ok) throw new ConfigError(`${file} (nothing was written)`, v.problems);
  return { input: parsed.value, sensors: v.value.sensors.length };
}

async function push(nc: NatsConnection, server: string, bucket: string, id: string, file: string, doc: { input: unknown; sensors: number }, expect: number | undefined, io: Io): Promise<number> {
  const kv = await openBucket(nc, bucket, server);
  const key = deviceKey(id);
  const body = JSON.stringify(doc.input);
  const bytes = Buffer.byteLength(body);
  const { maxValueSize } = await kv.status();
  if (maxValueSize > 0 && bytes > maxValueSize) {
    throw new PushRefused(`${file}: the document is ${bytes} bytes as JSON; bucket ${bucket} accepts at most ${maxValueSize} bytes per document. Nothing was written.`);
  }
  let revision: number;
  try {
    if (expect === undefined) revision = await kv.put(key, body);
    else if (expect === 0) revision = await kv.create(key, body);
    else revision = await kv.update(key, body, expect);
  } catch (cause) {
    const msg = errorMessage(cause);
    if (expect !== undefined && /wrong last sequence|key exists/i.test(msg)) {
      const now = await kv.get(key).catch(() => null);
      const at = now && now.operation === "PUT" ? `revision ${now.revision}` : "no document";
      throw new PushRefused(
        `conflict: ${key} is at ${at}, not ${expect === 0 ? "empty" : `revision ${expect}`}: someone changed it meanwhile. Nothing was written. Run \`edge-gateway config get ${id} --server ${server}\`, merge, and push again with --expect-revision ${now?.revision ?? 0}.`,
        cause,
      );
    }
    if (/maximum|size/i.test(msg)) throw new PushRefused(`the hub refused the document (${bytes} bytes): ${msg}`, cause);
    throw new GatewayError("EGW_NATS_CONNECT", `cannot write ${key} to ${bucket} on ${server}: ${msg}`, { cause });
  }
  io.out(`pushed ${key} to bucket ${bucket}: revision ${revision} (${bytes} bytes; ${doc.sensors} sensor(s))`);
  return EXIT.ok;
}

async function get(nc: NatsConnection, server: string, bucket: string, id: string, json: boolean, io: Io, revision?: number): Promise<number> {
  const kv = await openBucket(nc, bucket, server);
  const key = deviceKey(id);
  const e = await kv.get(key, revision ? { revision } : undefined);
  if (!e || e.operation !== "PUT") {
    io.err(`error: device ${id} has no config document in bucket ${bucket}${e ? ` (deleted at revision ${e.revision})` : ""}: push one with \`edge-gateway config push ${id} FILE --server ${server}\``);
    return EXIT.invalid;
  }
  let document: unknown;
  try {
    document = e.json();
  } catch {
    document = undefined;
  }
  if (json) {
    io.out(JSON.stringify({ revision: e.revision, created: e.created.toISOString(), document: document ?? null, ...(document === undefined ? { raw: e.string() } : {}) }));
  } else {
    io.err(`${key} revision ${e.revision}, written ${e.created.toISOString()}${document === undefined ? " (NOT JSON: the device rejects it)" : ""}`);
    io.out(document === undefined ? e.string() : JSON.stringify(document, null, 2));
  }
  return EXIT.ok;
}

async function history(nc: NatsConnection, server: string, bucket: string, id: string, json: boolean, io: Io): Promise<number> {
  const kv = await openBucket(nc, bucket, server);
  const key = deviceKey(id);
  const rows: { revision: number; created: string; operation: string; size: number }[] = [];
  const it = await kv.history({ key });
  for await (const e of it) rows.push({ revision: e.revision, created: e.created.toISOString(), operation: e.operation, size: e.length });
  if (json) {
    io.out(JSON.stringify(rows));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    io.err(`device ${id} has no config history in bucket ${bucket}`);
    return EXIT.invalid;
  }
  io.out(["REVISION  TIME                      OPERATION  SIZE", ...rows.map((r) => `${String(r.revision).padEnd(8)}  ${r.created.padEnd(24)}  ${r.operation.padEnd(9)}  ${r.size}`)].join("\n"));
  return EXIT.ok;
}

export const config: Command = {
  usage,
  async run(argv, io) {
    let nc: NatsConnection | undefined;
    try {
      const { values, positionals } = parse(argv, options, true);
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      const [sub, id, file, ...extra] = positionals;
      if (!sub || !["push", "get", "history"].includes(sub)) throw new UsageError(sub ? `unknown config command ${JSON.stringify(sub)}: use push, get or history` : "give push, get or history");
      const dev = deviceIdArg(id, "edge-gateway config get pi-0042");
      if (sub === "push" && !file) throw new UsageError("config push needs the document FILE");
      if ((sub !== "push" && file !== undefined) || extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(sub !== "push" ? file : extra[0])}`);
      if (sub !== "push" && values["expect-revision"] !== undefined) throw new UsageError("--expect-revision only applies to push");
      const expect = parseRevision(values["expect-revision"]);
      const server = serverUrl(values.server);
      const bucket = values.bucket ?? CONFIG_BUCKET;
      // Validate before connecting: an invalid file never needs the hub.
      const doc = sub === "push" ? await readDocument(file!) : undefined;
      nc = await connectServer(server, values.creds);
      if (doc) return await push(nc, server, bucket, dev, file!, doc, expect, io);
      if (sub === "get") return await get(nc, server, bucket, dev, !!values.json, io, parseRevision(values.revision, "--revision"));
      return await history(nc, server, bucket, dev, !!values.json, io);
    } catch (err) {
      return reportError(err, io, err instanceof UsageError ? usage : undefined);
    } finally {
      await nc?.close().catch(() => undefined);
    }
  },
};
