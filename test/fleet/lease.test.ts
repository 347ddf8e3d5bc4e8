/**
 * The reconcile lease and watermark (src/cloud/fleet-lease.ts) on a real JetStream server: one
 * holder at a time, a stalled holder taken over, and a watermark that never goes back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { markReconciled, ReconcileLease, reconciledThrough, requestReconcile } from "../../src/cloud/fleet-lease.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await cleanupNats();
});

async function bucket(): Promise<{ nc: NatsConnection; kv: KV }> {
  const server = await startJetStreamServer("lease");
  const nc = await server.connect();
  cleanups.push(() => nc.close());
  return { nc, kv: await new Kvm(nc).create("gateway-fleet", { history: 1 }) };
}

describe("fleet › reconcile lease", () => {
  it("one holder at a time: a second process cannot take a renewed lease; it can once released", async () => {
    const { kv } = await bucket();
    const a = new ReconcileLease(kv, "a", { renewMs: 50, staleMs: 1000 });
    const b = new ReconcileLease(kv, "b", { renewMs: 50, staleMs: 1000 });
    cleanups.push(() => a.release(), () => b.release());
    expect(await a.tryAcquire()).toBe(true);
    const first = (await kv.get("reconcile.lease"))!.revision;
    // While a renews, b keeps failing — also after a has renewed well past b's staleness time.
    const bGot: boolean[] = [];
    await waitFor(
      async () => {
        bGot.push(await b.tryAcquire());
        return (await kv.get("reconcile.lease"))!.revision >= first + 40;
      },
      { timeout: 20_000, interval: 50, what: "a to renew its lease 40 times (2 s, twice b's staleness time)" },
    );
    expect(bGot.length).toBeGreaterThan(1);
    expect(bGot.every((got) => !got)).toBe(true);
    expect(await a.confirm()).toBe(true);
    await a.release();
    expect(await b.tryAcquire()).toBe(true);
    expect(await b.confirm()).toBe(true);
  });

  it("a holder that stops renewing is taken over once stale; the old holder then sees it lost and does not release the new one's", async () => {
    const { kv } = await bucket();
    // `stalled` never renews within the test (as if its process hung mid-pass).
    const stalled = new ReconcileLease(kv, "stalled", { renewMs: 3_600_000 });
    const next = new ReconcileLease(kv, "next", { renewMs: 50, staleMs: 300 });
    cleanups.push(() => stalled.release(), () => next.release());
    expect(await stalled.tryAcquire()).toBe(true);
    expect(await next.tryAcquire()).toBe(false);
    await waitFor(() => next.tryAcquire(), { timeout: 10_000, interval: 50, what: "the stale lease to be taken over" });
    expect(await stalled.confirm()).toBe(false);
    await stalled.release();
    expect(await next.confirm()).toBe(true);
    expect((await kv.get("reconcile.lease"))!.json<{ owner: string }>().owner).toBe("next");
  });

  it("the watermark: a request's sequence is covered once a pass at or after it is recorded; it never goes back", async () => {
    const { kv } = await bucket();
    expect(await reconciledThrough(kv)).toBe(0);
    const r1 = await requestReconcile(kv);
    const r2 = await requestReconcile(kv);
    expect(r2).toBeGreaterThan(r1);
    await markReconciled(kv, r1);
    expect(await reconciledThrough(kv)).toBe(r1);
    expect(await reconciledThrough(kv)).toBeLessThan(r2);
    await markReconciled(kv, r2);
    // A slower pass that read the registry earlier finishes last: the watermark stays.
    await markReconciled(kv, r1);
    expect(await reconciledThrough(kv)).toBe(r2);
  });
});
