import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import { OPS_INBOX_PREFIX } from "../cloud/auth.js";
import { GatewayError, errorMessage } from "../errors.js";

/** Connection flags shared by the cloud-side commands. */
export const serverFlags = {
  server: { type: "string", short: "s" },
  creds: { type: "string" },
} as const;

/** The server a cloud-side command talks to: --server, else $NATS_URL, else the local default. */
export function serverUrl(flag: string | undefined): string {
  return flag ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
}

/**
 * Connects a CLI command to `server`; unreachable → EGW_NATS_CONNECT (exit 2) saying what
 * was tried and what to check.
 */
export async function connectServer(server: string | undefined, creds?: string): Promise<NatsConnection> {
  const servers = serverUrl(server);
  // The operator tools' own inbox prefix (docs/security.md): devices may answer into it but
  // never read it. $EDGE_GATEWAY_INBOX_PREFIX overrides it (e.g. one prefix per operator).
  const inboxPrefix = process.env.EDGE_GATEWAY_INBOX_PREFIX || OPS_INBOX_PREFIX;
  const opts: ConnectionOptions = { servers, name: "edge-gateway cli", timeout: 5000, maxReconnectAttempts: 3, inboxPrefix };
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
    throw new GatewayError("EGW_NATS_CONNECT", `cannot reach ${servers}: ${errorMessage(cause)} (check --server URL, or NATS_URL)`, { cause });
  }
}
