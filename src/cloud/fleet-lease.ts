/**
 * One reconciler at a time (issue 14): a lease in the fleet registry bucket, and the watermark
 * that lets a registration see that another call's reconcile pass already covered it.
 *
 * The lease is an optimisation, not what keeps registrations from being lost: every pass writes
 * the whole registry and re-reads until registry and streams agree (fleet.ts), so even two
 * holders at once (a stalled holder whose lease was taken over) converge. What the lease buys:
 * on nats-server 2.9.10 one update of the LATEST stream with 1,000 per-device subjects costs
 * seconds (the server checks each subject against every other stream's), and concurrent updates
 * of one stream fail spuriously with "subjects overlap with an existing stream". Eight
 * `add-device` calls therefore take turns, and each pass covers every call registered before it.
 *
 * Staleness is judged by each waiter's own clock (a lease revision unchanged for
 * {@link LEASE_STALE_MS} while the holder renews every {@link LEASE_RENEW_MS}), so clocks of
 * different operators' machines need not agree.
 */
import type { KV } from "@nats-io/kv";
import { errorMessage } from "../errors.js";

const LEASE_KEY = "reconcile.lease";
const DONE_KEY = "reconcile.done";
const REQUEST_KEY = "reconcile.request";

/** The holder renews this often. */
export const LEASE_RENEW_MS = 5_000;
/** A lease whose revision has not changed for this long (by the waiter's clock) is taken over. */
export const LEASE_STALE_MS = 30_000;

/** A compare-and-set that lost: someone else wrote the key first. */
function casLost(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test(errorMessage(err));
}

/**
 * Marks the registry changed by this call; resolves with the registry stream's sequence at that
 * point. A reconcile pass that read the registry at or after it has seen this call's changes.
 */
export function requestReconcile(kv: KV): Promise<number> {
  return kv.put(REQUEST_KEY, JSON.stringify({ at: new Date().toISOString() }));
}

/** The registry sequence the last completed pass covered (0: none yet). */
export async function reconciledThrough(kv: KV): Promise<number> {
  const e = await kv.get(DONE_KEY);
  return e?.operation === "PUT" ? (e.json<{ seq?: number }>().seq ?? 0) : 0;
}

/** Raises the watermark to `seq` (never lowers it: a slower pass may finish after a newer one). */
export async function markReconciled(kv: KV, seq: number): Promise<void> {
  for (;;) {
    const e = await kv.get(DONE_KEY);
    const have = e?.operation === "PUT" ? (e.json<{ seq?: number }>().seq ?? 0) : 0;
    if (have >= seq) return;
    const value = JSON.stringify({ seq, at: new Date().toISOString() });
    try {
      if (e) await kv.update(DONE_KEY, value, e.revision);
      else await kv.create(DONE_KEY, value);
      return;
    } catch (err) {
      if (!casLost(err)) throw err;
    }
  }
}

/** The lease of one process; `tryAcquire` → work (checking `confirm`) → `release`. */
export class ReconcileLease {
  private revision = 0;
  private lost = false;
  private renewing?: NodeJS.Timeout;
  private inflight?: Promise<void>;
  /** The foreign lease revision last seen, and since when (this process's clock). */
  private seen = { revision: 0, since: 0 };
  private readonly value: string;

  private readonly renewMs: number;
  private readonly staleMs: number;

  /** `owner` must be unique to this process (e.g. host, pid and a random part). */
  constructor(
    private readonly kv: KV,
    private readonly owner: string,
    timing: { renewMs?: number; staleMs?: number } = {},
  ) {
    this.value = JSON.stringify({ owner });
    this.renewMs = timing.renewMs ?? LEASE_RENEW_MS;
    this.staleMs = timing.staleMs ?? LEASE_STALE_MS;
  }

  /** True when this process now holds the lease; false while another holder's is fresh. */
  async tryAcquire(): Promise<boolean> {
    const e = await this.kv.get(LEASE_KEY);
    try {
      if (!e) this.revision = await this.kv.create(LEASE_KEY, this.value);
      else if (e.operation !== "PUT") this.revision = await this.kv.update(LEASE_KEY, this.value, e.revision);
      else {
        if (e.revision !== this.seen.revision) this.seen = { revision: e.revision, since: Date.now() };
        if (Date.now() - this.seen.since < this.staleMs) return false;
        // The holder stopped renewing (killed, or stalled): take over.
        this.revision = await this.kv.update(LEASE_KEY, this.value, e.revision);
      }
    } catch (err) {
      if (casLost(err)) return false;
      throw err;
    }
    this.lost = false;
    this.renew();
    return true;
  }

  private renew(): void {
    this.renewing = setTimeout(() => {
      this.inflight = this.kv
        .update(LEASE_KEY, this.value, this.revision)
        .then((rev) => {
          this.revision = rev;
        })
        .catch((err) => {
          // A transient error is retried at the next tick; a lost compare-and-set means taken over.
          if (casLost(err)) this.lost = true;
        })
        .finally(() => {
          this.inflight = undefined;
          if (!this.lost && this.renewing) this.renew();
        });
    }, this.renewMs);
    this.renewing.unref();
  }

  /** True while the lease is still this process's (read from the bucket: call before a write). */
  async confirm(): Promise<boolean> {
    if (this.lost) return false;
    const e = await this.kv.get(LEASE_KEY);
    this.lost = e?.operation !== "PUT" || e.json<{ owner?: string }>().owner !== this.owner;
    return !this.lost;
  }

  /** Gives the lease up (only if still ours). Resolves, never rejects. */
  async release(): Promise<void> {
    clearTimeout(this.renewing);
    this.renewing = undefined;
    await this.inflight;
    if (this.lost) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.kv.delete(LEASE_KEY, { previousSeq: this.revision });
        return;
      } catch (err) {
        // Taken over meanwhile: nothing to give up. Otherwise the waiters take it when stale.
        if (casLost(err)) return;
      }
    }
  }
}
