/**
 * Fleet identity (issue 17, docs/security.md): decentralized JWT auth for the hub.
 *
 * One operator signs two accounts: `SYS` (the server's system account, used only to push
 * account updates) and `FLEET` (JetStream enabled; the hub stream, the config bucket, the
 * devices and the operator tools live here). Each device gets its own user, signed by the
 * FLEET account key, whose permissions name only that device ({@link devicePermissions}).
 * The hub runs a `full` account resolver, so issuing a device credential needs no server
 * change at all; revoking one is an account-JWT update pushed to the resolver
 * (`$SYS.REQ.CLAIMS.UPDATE`, src/cloud/device-creds.ts), which on nats-server 2.9.10 also closes the device's live leaf
 * link (server/accounts.go `updateAccountClaimsWithRefresh` walks every client of the account,
 * leaf links included, and closes those whose user JWT is revoked).
 *
 * The keys live in a directory on the operator's machine ({@link FleetKeys}); its seeds are
 * the fleet's root of trust: whoever holds `fleet.nk` can mint device credentials.
 */
import { access, chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { homedir } from "node:os";
import {
  createAccount,
  createOperator,
  createUser,
  decode,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromSeed,
  type Account,
  type KeyPair,
  type Permissions,
} from "@nats-io/jwt";
import { CONFIG_BUCKET, deviceKey } from "../bridge/remote-config-bucket.js";
import { GatewayError, errorMessage } from "../errors.js";

/** Inbox prefix of the operator tools (the CLI): devices may answer into it, never read it. */
export const OPS_INBOX_PREFIX = "_INBOX_ops";

/** Inbox prefix of a device's daemon, so that the hub's replies reach only that device. */
export function deviceInboxPrefix(deviceId: string): string {
  return `_INBOX_${deviceId}`;
}

/** The deliver prefix of the leaf's config mirror (DESIGN A3, Part C). */
export function configMirrorDeliver(deviceId: string): string {
  return `deliver.${deviceId}.cfg`;
}

/** Default keys directory: `$EDGE_GATEWAY_KEYS`, else `~/.config/edge-gateway/fleet`. */
export function defaultKeysDir(): string {
  return process.env.EDGE_GATEWAY_KEYS ?? join(homedir(), ".config", "edge-gateway", "fleet");
}

/**
 * What a device's leaf link may do, seen from the leaf (`pub` = what the leaf may send to the
 * hub, `sub` = what the hub delivers to it): DESIGN Part C's verified set. Nothing here names
 * another device; `_INBOX_ops.>` lets it answer the operator tools (inboxes are unguessable).
 */
export function devicePermissions(deviceId: string, bucket: string = CONFIG_BUCKET, hubDomain = "hub"): Permissions {
  const id = deviceId;
  return {
    pub: {
      allow: [
        `sensors.*.*.${id}.>`, // live readings (the hub's per-device interest: src/cloud/live.ts)
        `gateway.${id}.>`, // events; the control service's own subjects
        `deliver.${id}.>`, // the hub's source of this device's stream
        "$JSC.R.>", // replies to the hub's consumer-create requests for that source
        `$JS.${hubDomain}.API.CONSUMER.CREATE.KV_${bucket}.*.$KV.${bucket}.${deviceKey(id)}`, // the config mirror, this key only
        `$JS.FC.KV_${bucket}.>`, // flow control of the mirror
        `$JS.${hubDomain}.API.INFO`, // the link monitor's "is the hub there" check
        `${OPS_INBOX_PREFIX}.>`, // replies to the operator tools' control requests
      ],
    },
    sub: {
      allow: [
        `gateway.${id}.>`,
        "$SRV.>",
        `$JS.${id}.API.>`,
        "$JSC.R.>",
        `deliver.${id}.>`,
        "$JS.FC.TELEMETRY.>",
        `${deviceInboxPrefix(id)}.>`,
      ],
    },
  };
}

interface DeviceRecord {
  /** Public keys of every user credential issued to the device (all revoked on removal). */
  users: string[];
}

const ACCOUNT_LIMITS: Account["limits"] = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const dec = new TextDecoder();

/**
 * The fleet's keys on the operator's machine. `FleetKeys.open(dir)` creates them the first
 * time (mode 0600 files in a 0700 directory) and reads them afterwards; idempotent.
 */
export class FleetKeys {
  readonly dir: string;
  readonly operator: KeyPair;
  readonly sys: KeyPair;
  readonly fleet: KeyPair;
  /** The current FLEET account JWT (revocations included). */
  fleetJwt: string;
  readonly operatorJwt: string;
  readonly sysJwt: string;

  private constructor(dir: string, k: { operator: KeyPair; sys: KeyPair; fleet: KeyPair; operatorJwt: string; sysJwt: string; fleetJwt: string }) {
    this.dir = dir;
    this.operator = k.operator;
    this.sys = k.sys;
    this.fleet = k.fleet;
    this.operatorJwt = k.operatorJwt;
    this.sysJwt = k.sysJwt;
    this.fleetJwt = k.fleetJwt;
  }

  get sysCredsPath(): string {
    return join(this.dir, "sys.creds");
  }
  /** Credential of the operator tools (the CLI's `--creds`): full access to the FLEET account. */
  get opsCredsPath(): string {
    return join(this.dir, "ops.creds");
  }
  get fleetPublicKey(): string {
    return this.fleet.getPublicKey();
  }
  get sysPublicKey(): string {
    return this.sys.getPublicKey();
  }

  /** Opens the keys in `dir`, creating operator, accounts and the ops/sys credentials if absent. */
  static async open(dir: string, opts: { create?: boolean } = {}): Promise<FleetKeys> {
    const seedFile = (n: string) => join(dir, `${n}.nk`);
    if (!(await exists(seedFile("operator")))) {
      if (opts.create === false) {
        throw new GatewayError("EGW_CONFIG_READ", `no fleet keys in ${dir}: run \`edge-gateway cloud hub-config --keys ${dir}\` first (it creates them), or pass --keys DIR`);
      }
      await FleetKeys.create(dir);
    }
    try {
      const seed = async (n: string) => fromSeed(new TextEncoder().encode((await readFile(seedFile(n), "utf8")).trim()));
      const text = async (n: string) => (await readFile(join(dir, n), "utf8")).trim();
      return new FleetKeys(dir, {
        operator: await seed("operator"),
        sys: await seed("sys"),
        fleet: await seed("fleet"),
        operatorJwt: await text("operator.jwt"),
        sysJwt: await text("sys.jwt"),
        fleetJwt: await text("fleet.jwt"),
      });
    } catch (cause) {
      throw new GatewayError("EGW_CONFIG_READ", `cannot read the fleet keys in ${dir}: ${errorMessage(cause)}`, { cause });
    }
  }

  private static async create(dir: string): Promise<void> {
    await mkdir(join(dir, "devices"), { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const operator = createOperator();
    const sys = createAccount();
    const fleet = createAccount();
    const put = async (name: string, data: string | Uint8Array) => writeFile(join(dir, name), data, { mode: 0o600 });
    const seedText = (kp: KeyPair) => dec.decode(kp.getSeed());
    const operatorJwt = await encodeOperator("edge-gateway", operator, { system_account: sys.getPublicKey() });
    // An account JWT without limits allows 0 connections: give SYS the unlimited NATS limits (no JetStream).
    const { mem_storage: _m, disk_storage: _d, streams: _s, consumer: _c, ...natsLimits } = ACCOUNT_LIMITS ?? {};
    const sysJwt = await encodeAccount("SYS", sys, { limits: natsLimits }, { signer: operator });
    const fleetJwt = await encodeAccount("FLEET", fleet, { limits: ACCOUNT_LIMITS }, { signer: operator });
    await put("operator.nk", seedText(operator));
    await put("sys.nk", seedText(sys));
    await put("fleet.nk", seedText(fleet));
    await put("operator.jwt", operatorJwt);
    await put("sys.jwt", sysJwt);
    await put("fleet.jwt", fleetJwt);
    const sysUser = createUser();
    await put("sys.creds", fmtCreds(await encodeUser("sys", sysUser, sys), sysUser));
    const opsUser = createUser();
    await put("ops.creds", fmtCreds(await encodeUser("ops", opsUser, fleet), opsUser));
  }

  private devicePath(deviceId: string): string {
    return join(this.dir, "devices", `${deviceId}.json`);
  }

  private async deviceRecord(deviceId: string): Promise<DeviceRecord> {
    try {
      return JSON.parse(await readFile(this.devicePath(deviceId), "utf8")) as DeviceRecord;
    } catch {
      return { users: [] };
    }
  }

  /**
   * Issues a new credential (creds file text) for `deviceId`, scoped by
   * {@link devicePermissions} and allowed only on leafnode connections. Needs no server:
   * the hub trusts anything the FLEET account key signed and has not revoked.
   */
  async issueDevice(deviceId: string, opts: { bucket?: string; hubDomain?: string } = {}): Promise<Uint8Array> {
    const user = createUser();
    const perms = devicePermissions(deviceId, opts.bucket, opts.hubDomain);
    const jwt = await encodeUser(`device ${deviceId}`, user, this.fleet, { ...perms, allowed_connection_types: ["LEAFNODE"] });
    const rec = await this.deviceRecord(deviceId);
    rec.users.push(user.getPublicKey());
    await writeFile(this.devicePath(deviceId), JSON.stringify(rec, null, 2), { mode: 0o600 });
    return fmtCreds(jwt, user);
  }

  /** Whether any credential was ever issued to `deviceId` from these keys. */
  async hasIssued(deviceId: string): Promise<boolean> {
    return (await this.deviceRecord(deviceId)).users.length > 0;
  }

  /**
   * Revokes every credential ever issued to `deviceId` in the FLEET account JWT (re-signed by
   * the operator and saved). Returns the number of keys newly revoked; push the new JWT with
   * `pushAccountJwt` (src/cloud/device-creds.ts).
   */
  async revokeDevice(deviceId: string): Promise<number> {
    const rec = await this.deviceRecord(deviceId);
    const claims = decode<Account>(this.fleetJwt).nats;
    const revocations = { ...(claims.revocations ?? {}) };
    const now = Math.floor(Date.now() / 1000) + 1; // covers a JWT issued within this second
    let added = 0;
    for (const pk of rec.users) {
      if (revocations[pk] === undefined) added++;
      revocations[pk] = now;
    }
    if (added === 0) return 0;
    const jwt = await encodeAccount("FLEET", this.fleet, { ...claims, limits: ACCOUNT_LIMITS, revocations }, { signer: this.operator });
    await writeFile(join(this.dir, "fleet.jwt"), jwt, { mode: 0o600 });
    this.fleetJwt = jwt;
    return added;
  }
}
