/**
 * The demo's hub with fleet auth (docs/security.md): fleet keys in the demo's directory, the
 * hub config `cloud hub-config` prints, the device's own credential for the leaf link, and the
 * operator tools' credential and inbox prefix for the demo's own hub connection.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/nats-core";
import { FleetKeys, OPS_INBOX_PREFIX } from "../cloud/auth.js";
import { renderHubConfig } from "../cloud/hub-config.js";
import { addDeviceLive, ensureLiveStreams } from "../cloud/live.js";
import { NatsServerProcess, renderServerConfig } from "./nats-server.js";

export interface DemoHub {
  hub: NatsServerProcess;
  /** How the demo connects to the hub (the ops credential, the operator inbox prefix). */
  connectOpts: ConnectionOptions;
  /** The device credential file for the leaf remote. */
  deviceCreds?: string;
  /** Creates the live-interest streams and registers the device in them. */
  registerLive(nc: NatsConnection): Promise<void>;
}

/**
 * Starts the demo hub in `dir/hub` (ports picked freely): with `auth`, JWT auth as
 * `cloud hub-config` renders it and `deviceId`'s credential issued; without, an open hub.
 */
export async function startDemoHub(dir: string, deviceId: string, auth: boolean): Promise<DemoHub> {
  const registerLive = async (nc: NatsConnection) => {
    await ensureLiveStreams(nc);
    await addDeviceLive(nc, deviceId);
  };
  if (!auth) {
    const hub = new NatsServerProcess({ name: "hub", dir: join(dir, "hub"), render: renderServerConfig({ name: "hub", domain: "hub", leafListener: true }) });
    await hub.start();
    return { hub, connectOpts: {}, registerLive };
  }
  const keys = await FleetKeys.open(join(dir, "keys"));
  const hub = new NatsServerProcess({
    name: "hub",
    dir: join(dir, "hub"),
    render: (ports, storeDir) =>
      renderHubConfig(keys, {
        listen: `127.0.0.1:${ports.client}`,
        leafListen: `127.0.0.1:${ports.leaf}`,
        // The leaf reaches the hub through the demo's proxy: see renderServerConfig.
        leafAdvertise: "127.0.0.1:1",
        monitor: false,
        storeDir,
        resolverDir: join(dir, "hub", "accounts"),
      }),
  });
  await hub.start();
  const deviceCreds = join(dir, `${deviceId}.creds`);
  await writeFile(deviceCreds, await keys.issueDevice(deviceId), { mode: 0o600 });
  return {
    hub,
    deviceCreds,
    connectOpts: { authenticator: credsAuthenticator(readFileSync(keys.opsCredsPath)), inboxPrefix: OPS_INBOX_PREFIX },
    registerLive,
  };
}
