/**
 * Whether the system clock is synchronised (DESIGN A2: readings taken before are `uncertain`).
 * A Raspberry Pi has no RTC: until NTP set the time, `ts` may be days or years off.
 *
 * The production probe asks, in order:
 * 1. `/run/systemd/timesync/synchronized` exists → synchronised (systemd-timesyncd touches it
 *    at its first sync);
 * 2. `timedatectl show -p NTPSynchronized --value` → `yes` / `no` (the kernel's adjtimex
 *    STA_UNSYNC flag, so it also covers chrony and ntpd);
 * 3. neither answers (no systemd, e.g. in a container, whose host keeps the time) → cannot tell,
 *    and the clock is taken as synchronised so readings are not marked forever.
 * Once synchronised it stays so (no more probing). Tests pass their own probe (the seam).
 */
import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import type { Logger } from "../logger.js";

/** true = synchronised, false = not yet, undefined = cannot tell. Resolves, never rejects. */
export type ClockSyncProbe = () => Promise<boolean | undefined>;

export const TIMESYNC_FLAG_FILE = "/run/systemd/timesync/synchronized";

/** The probe described in the file comment; `file` and `timedatectl` can be replaced for tests. */
export function systemClockProbe(opts: { file?: string; timedatectl?: string } = {}): ClockSyncProbe {
  const file = opts.file ?? TIMESYNC_FLAG_FILE;
  const command = opts.timedatectl ?? "timedatectl";
  return async () => {
    if (await access(file).then(() => true, () => false)) return true;
    return new Promise((resolve) => {
      execFile(command, ["show", "-p", "NTPSynchronized", "--value"], { timeout: 2000 }, (err, stdout) => {
        const answer = String(stdout).trim();
        if (err || (answer !== "yes" && answer !== "no")) return resolve(undefined);
        resolve(answer === "yes");
      });
    });
  };
}

/**
 * Follows the clock's synchronisation: `synced` is false until the probe says yes (or cannot
 * tell), probing every `everyMs` until then. `close()` is safe to call twice.
 */
export class ClockSync implements AsyncDisposable {
  synced = false;
  /** Resolves once the first probe answered. */
  readonly ready: Promise<void>;
  private timer?: NodeJS.Timeout;
  private probing = false;
  private closed = false;

  private constructor(
    private readonly probe: ClockSyncProbe,
    private readonly everyMs: number,
    private readonly logger?: Logger,
  ) {
    this.ready = this.first();
  }

  /** Starts following at once (probing in the background); await `ready` before the first reading. */
  static follow(probe: ClockSyncProbe = systemClockProbe(), opts: { everyMs?: number; logger?: Logger } = {}): ClockSync {
    return new ClockSync(probe, opts.everyMs ?? 10_000, opts.logger);
  }

  private async first(): Promise<void> {
    await this.check();
    if (this.synced || this.closed) return;
    this.logger?.warn('system clock not synchronised yet: readings are published with quality "uncertain" until it is');
    this.timer = setInterval(() => void this.check(), this.everyMs);
    this.timer.unref();
  }

  /** Asks the probe once (unless already synchronised); resolves, never rejects. */
  async check(): Promise<boolean> {
    if (this.synced || this.probing) return this.synced;
    this.probing = true;
    try {
      const answer = await this.probe().catch(() => undefined);
      if (answer !== false) {
        if (this.timer) this.logger?.info({ how: answer === undefined ? "cannot tell" : "synchronised" }, "system clock synchronised: readings are no longer marked uncertain for it");
        this.synced = true;
        this.close();
      }
    } finally {
      this.probing = false;
    }
    return this.synced;
  }

  /** Stops probing. Safe to call twice. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
