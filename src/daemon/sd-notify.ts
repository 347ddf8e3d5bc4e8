/**
 * systemd integration (`Type=notify`, `WatchdogSec=`): READY=1, WATCHDOG=1, STATUS=, STOPPING=1
 * through `$NOTIFY_SOCKET`.
 *
 * Node cannot send AF_UNIX datagrams (dgram is UDP only), so each notification runs
 * `systemd-notify VAR=VALUE…` (always present where systemd is; since systemd 246 it waits
 * until systemd has read the message, so it is attributed to the unit; the unit file sets
 * `NotifyAccess=all` because the sender is a child process). No new native dependency.
 * Without `NOTIFY_SOCKET` everything here is a no-op.
 *
 * The rules (docs/operations.md):
 * - READY=1 once the daemon started: drivers running and the publisher accepting readings
 *   into its queue. Not "connected to the leaf": the daemon is built to run with the leaf
 *   down (readings queue), and a start timeout would only restart it and lose that queue.
 * - WATCHDOG=1 every `WATCHDOG_USEC / 2` while the event loop runs, unless the publisher is
 *   stalled: connected to the leaf with its stream ready, readings waiting, and no PubAck for
 *   `stallMs` (default 60 s) — a state a restart can fix. A leaf that is down is not a reason
 *   to be restarted (a restart would lose the in-memory queue), so it does not stop the pings.
 * - STATUS= one line (`publishing: 3 sensors, link up, 0 queued`), sent when it changes.
 * - STOPPING=1 when the ordered shutdown begins.
 */
import { execFile } from "node:child_process";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";

export interface SdNotifyOptions {
  /** Environment to read NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default `systemd-notify`. */
  command?: string;
  logger: Logger;
}

/** Sends sd_notify messages; `notify` resolves false (never rejects) when it could not. */
export interface SdNotifier {
  readonly enabled: boolean;
  notify(fields: Record<string, string | number>): Promise<boolean>;
}

/** Half the watchdog period in ms when systemd asked this process for pings, else undefined. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

export function createSdNotifier(opts: SdNotifyOptions): SdNotifier {
  const env = opts.env ?? process.env;
  const socket = env.NOTIFY_SOCKET;
  const command = opts.command ?? "systemd-notify";
  let warned = false;
  if (!socket) return { enabled: false, notify: async () => false };
  return {
    enabled: true,
    notify(fields) {
      const args = Object.entries(fields).map(([k, v]) => `${k}=${String(v).replace(/\n/g, " ")}`);
      return new Promise((resolve) => {
        execFile(command, args, { env: { ...env, NOTIFY_SOCKET: socket }, timeout: 10_000 }, (err) => {
          if (err && !warned) {
            warned = true;
            const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
            opts.logger.error(
              { err: errorMessage(err), command, socket },
              missing
                ? `${command} not found: cannot notify systemd (READY/WATCHDOG); install systemd's systemd-notify or run the unit with Type=simple and no WatchdogSec`
                : "sd_notify failed: systemd may not see READY/WATCHDOG (check NotifyAccess=all in the unit)",
            );
          }
          resolve(!err);
        });
      });
    },
  };
}

/** What the supervisor reads from the daemon on every tick. */
export interface SupervisedState {
  /** Publisher connected to the leaf and its stream ready. */
  healthy: boolean;
  leafConnected: boolean;
  queued: number;
  inFlight: number;
  /** Readings acknowledged by the leaf so far (progress marker). */
  published: number;
  sensors: number;
  hub: string;
}

export interface SupervisorOptions extends SdNotifyOptions {
  state: () => SupervisedState;
  /** A publisher with a backlog and no progress for this long stops the watchdog pings. Default 60 s. */
  stallMs?: number;
  /** Tick period when systemd set no watchdog (STATUS refresh). Default 10 s. */
  statusEveryMs?: number;
  notifier?: SdNotifier;
  /**
   * Called (and awaited) once when a stall begins, before the pings stop: the last chance to
   * persist what a restart would lose. `false` when the stall ended (progress again).
   */
  onStall?: (stalled: boolean) => Promise<void> | void;
}

/** The STATUS= line. */
export function statusLine(s: SupervisedState): string {
  const what = s.healthy ? "publishing" : s.leafConnected ? "leaf stream not ready" : "local leaf unreachable";
  return `${what}: ${s.sensors} sensor${s.sensors === 1 ? "" : "s"}, link ${s.hub}, ${s.queued + s.inFlight} queued`;
}

/** Runs the READY / WATCHDOG / STATUS / STOPPING protocol. A no-op without NOTIFY_SOCKET. */
export class SystemdSupervisor {
  readonly notifier: SdNotifier;
  readonly watchdogMs?: number;
  private readonly opts: SupervisorOptions;
  private timer?: NodeJS.Timeout;
  private lastStatus = "";
  private sending = false;
  private lastPublished = -1;
  // Monotonic: a wall-clock step forward (NTP on a Pi without RTC) must not look like a stall.
  private lastProgress = performance.now();
  private stalledLogged = false;

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.notifier = opts.notifier ?? createSdNotifier(opts);
    this.watchdogMs = watchdogIntervalMs(opts.env ?? process.env);
  }

  /** Sends READY=1 (with the first STATUS) and starts the periodic ticks. */
  async ready(): Promise<void> {
    if (!this.notifier.enabled) return;
    this.lastStatus = statusLine(this.opts.state());
    await this.notifier.notify({ READY: 1, STATUS: this.lastStatus });
    const every = Math.min(this.watchdogMs ?? Infinity, this.opts.statusEveryMs ?? 10_000);
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    if (this.watchdogMs) void this.tick();
  }

  /** True when the publisher is connected and ready, has work, and made no progress for stallMs. */
  stalled(s: SupervisedState, now = performance.now()): boolean {
    if (s.published !== this.lastPublished || s.queued + s.inFlight === 0 || !s.healthy) {
      this.lastPublished = s.published;
      this.lastProgress = now;
      return false;
    }
    return now - this.lastProgress > (this.opts.stallMs ?? 60_000);
  }

  private async tick(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      const s = this.opts.state();
      const fields: Record<string, string | number> = {};
      const stalled = this.stalled(s);
      if (this.watchdogMs) {
        if (stalled !== this.stalledLogged) {
          try {
            await this.opts.onStall?.(stalled);
          } catch (err) {
            this.opts.logger.error({ err: errorMessage(err) }, "stall handler failed");
          }
        }
        if (!stalled) fields.WATCHDOG = 1;
        if (stalled && !this.stalledLogged) {
          this.opts.logger.error({ queued: s.queued, inFlight: s.inFlight }, "publisher stalled (no PubAck while connected): withholding the systemd watchdog so the unit is restarted");
        }
        this.stalledLogged = stalled;
      }
      const status = stalled ? `stalled: ${statusLine(s)}` : statusLine(s);
      if (status !== this.lastStatus) fields.STATUS = status;
      this.lastStatus = status;
      if (Object.keys(fields).length > 0) await this.notifier.notify(fields);
    } finally {
      this.sending = false;
    }
  }

  /** Stops the ticks and sends STOPPING=1. Safe to call twice. */
  async stopping(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const had = this.timer !== undefined;
    this.timer = undefined;
    if (had) await this.notifier.notify({ STOPPING: 1, STATUS: "stopping: flushing readings" });
  }
}
