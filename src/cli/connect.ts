import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import { OPS_INBOX_PREFIX } from "../cloud/auth.js";
import { GatewayError, errorMessage } from "../errors.js";

/**
 * Connection flags shared by the cloud-side commands. `--server` may be repeated and each
 * value may be a comma-separated list: every node of a hub cluster, tried in turn.
 */
export const serverFlags = {
  server: { type: "string", short: "s", multiple: true },
  creds: { type: "string" },
} as const;

const DEFAULT_SERVER = "nats://127.0.0.1:4222";

/**
 * The servers a cloud-side command talks to: every --server (comma-separated lists split),
 * else $NATS_URL (also a comma-separated list, as the nats CLI reads it), else the local default.
 */
export function serverUrls(flag: string | readonly string[] | undefined): string[] {
  const given = typeof flag === "string" ? [flag] : [...(flag ?? [])];
  const split = (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean);
  const fromFlag = given.flatMap(split);
  if (fromFlag.length) return fromFlag;
  const fromEnv = split(process.env.NATS_URL ?? "");
  return fromEnv.length ? fromEnv : [DEFAULT_SERVER];
}

/** The servers as one display string (for messages). */
export function serverUrl(flag: string | readonly string[] | undefined): string {
  return serverUrls(flag).join(",");
}

/**
 * Connects a CLI command to the first reachable of `server` (a list: a cluster's nodes); once
 * connected it fails over to the others (and to any node the cluster announces) if its server
 * goes away. None reachable → EGW_NATS_CONNECT (exit 2) saying what was tried and what to check.
 */
export async function connectServer(server: string | readonly string[] | undefined, creds?: string): Promise<NatsConnection> {
  const servers = serverUrls(server);
  // The operator tools' own inbox prefix (docs/security.md): devices may answer into it but
  // never read it. $EDGE_GATEWAY_INBOX_PREFIX overrides it (e.g. one prefix per operator).
  const inboxPrefix = process.env.EDGE_GATEWAY_INBOX_PREFIX || OPS_INBOX_PREFIX;
  const opts: ConnectionOptions = {
    servers,
    name: "edge-gateway cli",
    timeout: 5000,
    // A few rounds over the whole list, so one dead node does not fail a command.
    maxReconnectAttempts: Math.max(3, servers.length * 2),
    reconnectTimeWait: 250,
    inboxPrefix,
  };
  if (creds) {
    try {
      opts.authenticator = credsAuthenticator(await readFile(creds));
    } catch (cause) {
      throw new GatewayError("EGW_CONFIG_READ", `cannot read --creds ${creds}: ${errorMessage(cause)}`, { cause });
    }
  }
  try {
    return await connect(opts);
  } catch (cause) {
    throw new GatewayError("EGW_NATS_CONNECT", `cannot reach ${servers.join(", ")}: ${errorMessage(cause)} (check --server URL[,URL…], or NATS_URL)`, { cause });
  }
}
