/**
 * The CLI's side of device credentials (docs/security.md): `cloud add-device --creds-out`
 * writes a new credential, `cloud remove-device` revokes them and pushes the account JWT to the
 * hub's resolver, which closes the device's live link.
 */
import { open, readFile } from "node:fs/promises";
import { credsAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { GatewayError, errorMessage } from "../errors.js";
import { FleetKeys } from "./auth.js";

/**
 * Sends an account JWT to the hub's resolver (`$SYS.REQ.CLAIMS.UPDATE`, as the SYS user);
 * every node of a cluster receives it. Resolves once a node confirmed it; a refusal or no
 * answer → EGW_HUB_AUTH.
 */
export async function pushAccountJwt(server: string, keys: FleetKeys, accountJwt: string): Promise<string> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: server, authenticator: credsAuthenticator(await readFile(keys.sysCredsPath)), timeout: 5000, maxReconnectAttempts: 3, name: "edge-gateway cli (account update)" });
  } catch (cause) {
    throw new GatewayError("EGW_NATS_CONNECT", `cannot reach ${server} as the system user: ${errorMessage(cause)} (check --server, and that the hub runs the config from \`cloud hub-config\`)`, { cause });
  }
  try {
    const reply = await nc.request("$SYS.REQ.CLAIMS.UPDATE", new TextEncoder().encode(accountJwt), { timeout: 5000 });
    const body = reply.json<{ data?: { code?: number; message?: string }; error?: { code?: number; description?: string } }>();
    if (body.error || (body.data?.code !== undefined && body.data.code !== 200)) {
      throw new GatewayError("EGW_HUB_AUTH", `the hub refused the account update: ${body.error?.description ?? body.data?.message ?? JSON.stringify(body)}`);
    }
    return body.data?.message ?? "updated";
  } catch (cause) {
    if (cause instanceof GatewayError) throw cause;
    throw new GatewayError("EGW_HUB_AUTH", `no answer to the account update from ${server}: ${errorMessage(cause)}`, { cause });
  } finally {
    await nc.close();
  }
}

/**
 * `cloud add-device ID --creds-out FILE`: issues the device's credential into FILE (mode 0600,
 * refused if FILE exists, so an installed credential is never overwritten by accident).
 */
export async function issueDeviceCredsFile(keysDir: string, deviceId: string, file: string): Promise<string> {
  const keys = await FleetKeys.open(keysDir, { create: false });
  let fh;
  try {
    fh = await open(file, "wx", 0o600);
  } catch (cause) {
    throw new GatewayError("EGW_CONFIG_READ", `cannot write --creds-out ${file}: ${errorMessage(cause)} (it must not exist yet)`, { cause });
  }
  try {
    await fh.writeFile(await keys.issueDevice(deviceId));
  } finally {
    await fh.close();
  }
  return `credential for device ${deviceId} in ${file} (leaf link only; install it on the device and pass it to \`leaf-config --creds\`)`;
}

/**
 * `cloud remove-device ID`: revokes every credential issued to the device and pushes the
 * account JWT to the hub's resolver; the hub closes the device's live leaf link and refuses
 * it from then on. Without a keys directory nothing can be revoked: says so.
 */
export async function revokeDeviceCreds(keysDir: string, deviceId: string, server: string): Promise<string> {
  let keys: FleetKeys;
  try {
    keys = await FleetKeys.open(keysDir, { create: false });
  } catch {
    return `warning: no fleet keys in ${keysDir}: no credential revoked (pass --keys DIR if the hub uses fleet auth)`;
  }
  if (!(await keys.hasIssued(deviceId))) return `no credential was issued to device ${deviceId} from ${keysDir}: nothing to revoke`;
  const n = await keys.revokeDevice(deviceId);
  // Pushed even when nothing new was revoked: a hub that missed an earlier push catches up.
  await pushAccountJwt(server, keys, keys.fleetJwt);
  return n > 0 ? `revoked: ${n} credential(s) of device ${deviceId}; the hub dropped its link` : `revoked: device ${deviceId} had no credential left to revoke`;
}
