/**
 * Where the running config comes from and when it changes (DESIGN A6): at boot the leaf
 * mirror, else the last-known-good cache file, else the bootstrap file; then every revision of
 * the mirror, in order, never going back to an older one; `reload` on request. It decides
 * *what* to run; the {@link Reconciler} applies it. Every outcome is an `events.config`.
 */
import { join } from "node:path";
import type { BootstrapConfig } from "../config/schema.js";
import { readConfigCache, removeConfigCache, RemoteConfig, writeConfigCache, type RemoteRevision } from "../config/remote.js";
import { delay } from "../util/backoff.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { withDeadline } from "./deadline.js";
import type { GatewayEvents } from "./events.js";
import type { LeafConnection } from "./leaf-connection.js";
import { bootstrapDocument, type Reconciler } from "./reconciler.js";
import type { AppliedConfig, ReloadResult } from "./view.js";

export interface ConfigControllerOptions {
  config: BootstrapConfig;
  leaf: LeafConnection;
  reconciler: Reconciler;
  events: GatewayEvents;
  logger: Logger;
  /** The daemon's root signal: following ends when it aborts. */
  signal: AbortSignal;
  /** At boot, how long to wait for the leaf's mirror before using the cache. Default 2 s. */
  remoteBootWaitMs?: number;
  /** Remote documents larger than this are rejected. Default 1 MiB. */
  maxDocumentBytes?: number;
}

export class ConfigController {
  private readonly opts: ConfigControllerOptions;
  private readonly logger: Logger;
  private remote?: RemoteConfig;
  private following?: Promise<void>;

  constructor(opts: ConfigControllerOptions) {
    this.opts = opts;
    this.logger = opts.logger;
  }

  /** The last-known-good cache file (undefined without remote config). */
  get cacheFile(): string | undefined {
    const rc = this.opts.config.remoteConfig;
    return rc === false ? undefined : (rc.cache ?? join(this.opts.config.state, "config.json"));
  }

  /** Applies the boot config, then follows the mirror in the background (when remote config is on). */
  async boot(): Promise<void> {
    const cacheFile = this.cacheFile;
    if (cacheFile === undefined) {
      await this.opts.reconciler.apply(bootstrapDocument(this.opts.config));
      return;
    }
    const handled = await this.bootRemote(cacheFile);
    this.following = this.follow(handled);
  }

  /** Resolves when following ended (after the root signal aborted), or at `deadline`. */
  async stopped(deadline: number): Promise<boolean> {
    return (await withDeadline(this.following ?? Promise.resolve(), deadline)) !== "timeout";
  }

  /**
   * Boot order (DESIGN A6): the leaf mirror if it holds the key (waiting at most
   * `remoteBootWaitMs` for the leaf), else the cache file, else the bootstrap file.
   * Returns the KV revision handled, for the follower not to handle it again.
   */
  private async bootRemote(cacheFile: string): Promise<number | undefined> {
    const waitMs = this.opts.remoteBootWaitMs ?? 2000;
    const timeout = new AbortController();
    const mirrored = await Promise.race([
      this.readMirror().catch((err: unknown) => {
        this.logger.warn({ err: errorMessage(err) }, "cannot read the config mirror on the leaf at boot");
        return undefined;
      }),
      delay(waitMs, AbortSignal.any([timeout.signal, this.opts.signal])).then(() => "timeout" as const),
    ]);
    timeout.abort();
    if (mirrored === "timeout") this.logger.warn({ waitMs }, "config mirror not readable at boot: starting from the cache file or the bootstrap file");
    if (mirrored && mirrored !== "timeout" && mirrored.status === "valid") {
      await this.handleRevision(mirrored);
      return mirrored.revision;
    }
    let base = bootstrapDocument(this.opts.config);
    if (mirrored === undefined || mirrored === "timeout" || mirrored.status === "invalid") {
      const cached = await readConfigCache(cacheFile);
      if (cached?.ok) base = { source: "cache", revision: cached.revision, document: cached.document, input: cached.input };
      else if (cached) this.logger.error({ reason: cached.reason }, "config cache unusable: ignoring it");
    }
    await this.opts.reconciler.apply(base);
    if (mirrored && mirrored !== "timeout") {
      // invalid → rejected event, keeps `base`; deleted → drops the cache.
      await this.handleRevision(mirrored);
      return mirrored.revision;
    }
    return base.revision;
  }

  /** The mirror's current revision, once the leaf connection is up. */
  private async readMirror(): Promise<RemoteRevision | undefined> {
    const remote = await this.remoteConfig();
    return remote?.current();
  }

  private async remoteConfig(): Promise<RemoteConfig | undefined> {
    await this.opts.leaf.settled(this.opts.signal);
    const nc = this.opts.leaf.connection;
    const rc = this.opts.config.remoteConfig;
    if (!nc || rc === false) return undefined;
    this.remote ??= new RemoteConfig({
      nc,
      deviceId: this.opts.config.device.id,
      bucket: rc.bucket,
      hubDomain: this.opts.config.nats.hubDomain,
      maxDocumentBytes: this.opts.maxDocumentBytes,
      logger: this.logger.child({ part: "remote-config" }),
    });
    return this.remote;
  }

  /** Follows the mirror until the daemon stops; never rejects. */
  private async follow(after: number | undefined): Promise<void> {
    const signal = this.opts.signal;
    try {
      const remote = await this.remoteConfig();
      if (!remote) return;
      for await (const rev of remote.follow(signal, after)) {
        if (signal.aborted) return;
        try {
          await this.handleRevision(rev);
        } catch (err) {
          // One bad apply must not end config following: the next revision gets its chance.
          this.logger.error({ err: errorMessage(err), revision: rev.revision }, "applying a remote config revision failed");
        }
      }
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, "config follower stopped");
    }
  }

  /**
   * Re-reads the device's document from the leaf mirror and applies it (the control service's
   * `reload`). Resolves undefined when remote config is off, so the caller re-reads the
   * bootstrap file instead.
   */
  async reload(): Promise<ReloadResult | undefined> {
    if (this.opts.config.remoteConfig === false) return undefined;
    const rev = await this.readMirror();
    const running = () => this.opts.reconciler.applied;
    if (!rev) return { status: "unchanged", revision: running().revision, source: running().source };
    await this.handleRevision(rev);
    if (rev.status === "invalid") return { status: "rejected", revision: rev.revision, source: running().source, errors: rev.problems };
    return { status: "applied", revision: running().revision, source: running().source };
  }

  /** Applies or rejects one KV revision, keeps the cache, and reports it on `events.config`. */
  private async handleRevision(rev: RemoteRevision): Promise<void> {
    const cacheFile = this.cacheFile;
    const events = this.opts.events;
    if (rev.status === "invalid") {
      this.logger.error({ revision: rev.revision, errors: rev.problems }, "remote config rejected: keeping the running config");
      events.emit("config", { revision: rev.revision, status: "rejected", errors: rev.problems });
      return;
    }
    const applied: AppliedConfig =
      rev.status === "valid" ? { source: "mirror", revision: rev.revision, document: rev.document, input: rev.input } : bootstrapDocument(this.opts.config);
    // A `reload` racing the follower could read revision N while N+1 is being applied: never
    // go back to an older revision than the one running.
    const changes = await this.opts.reconciler.apply(applied, { ifNewerThanRunning: rev.revision });
    if (!changes) return;
    try {
      if (cacheFile && rev.status === "valid") await writeConfigCache(cacheFile, rev.revision, rev.input);
      else if (cacheFile) await removeConfigCache(cacheFile);
    } catch (err) {
      this.logger.error({ err: errorMessage(err), cache: cacheFile }, "cannot write the config cache: the config is applied but will not survive a boot without the leaf");
    }
    const changed = [...changes.started, ...changes.restarted, ...changes.stopped, ...(changes.outputs ? ["outputs"] : []), ...(changes.mqtt ? ["mqtt"] : [])];
    this.logger.info({ revision: rev.revision, source: applied.source, ...changes }, rev.status === "valid" ? "remote config applied" : "remote config deleted: running the bootstrap file's settings");
    events.emit("config", { revision: rev.revision, status: "applied", source: applied.source, changed, ...changes });
  }
}
