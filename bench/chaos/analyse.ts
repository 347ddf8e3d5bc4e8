/**
 * The chaos suite's verdict, a pure function of what was observed: the leaf and hub streams,
 * every publish attempt a core subscriber on the leaf saw (also the ones JetStream then threw
 * away as duplicates), the daemon's own counters per process, and the fault timeline.
 *
 * Invariants (issue 18): 0 duplicated msg ids in either stream, 0 collisions (one msg id with
 * two bodies), hub = leaf, 0 silent drops (readings the leaf saw and discarded as duplicates of
 * a different reading, or acks the daemon counted that are not stored), and no lost reading
 * unless the daemon was killed while its leaf was down (what it held in memory then is the only
 * loss allowed).
 */

/** One stored message of this device. */
export interface StoredMsg {
  msgId: string;
  sensor: string;
  seq: number;
  ts: number;
  /** The body as stored (UTF-8 text). */
  body: string;
}

export type FaultKind = "hub-kill" | "leaf-kill" | "daemon-kill" | "daemon-term" | "link-cut" | "leaf-stop";

/** A fault as it happened (ms since epoch). */
export interface FaultEvent {
  kind: FaultKind;
  at: number;
  /** When the target was healthy again (undefined: never recovered). */
  recoveredAt?: number;
  /** For daemon kills: was the leaf process up and not stopped at that moment. */
  leafUp?: boolean;
  /** For daemon kills with the leaf up: since when its stream could store (after its last restart), in ms. */
  leafReadyForMs?: number;
}

/** What one daemon process said about itself (last /metrics scrape, or its final log line). */
export interface DaemonRun {
  startedAt: number;
  endedAt?: number;
  end: "kill" | "term" | "final" | "term-timeout" | "running";
  /** True when the figures come from the final `stopped` log line (exact), not a scrape. */
  exact: boolean;
  accepted: number;
  published: number;
  duplicates: number;
  dropped: number;
  rejected: number;
  /** Readings a clean shutdown reported as left unpublished (leaf unreachable). */
  leftUnpublished: number;
  /** Index in `faults` of the fault that ended this process (kill or SIGTERM). */
  fault?: number;
  /**
   * Seqs this process declared skipped at start (the unused rest of the blocks an unclean stop
   * left reserved; the daemon's `unclean stop` warning): per sensor `[from, to]`, inclusive.
   */
  skipped?: Record<string, [number, number]>;
}

/** One daemon process's readings: taken by it (accepted) vs stored (by their `ts`). */
export interface RunFigures {
  run: number;
  end: DaemonRun["end"];
  fault?: number;
  leafUpAtEnd?: boolean;
  /** With the leaf up at the end: how long its stream had been able to store, ms. */
  leafReadyForMs?: number;
  accepted: number;
  stored: number;
  /** accepted − stored: readings of this process stored nowhere. */
  missing: number;
  /** Of those, seq gaps a consumer can see (attributed to the fault that ended it). */
  visibleGaps: number;
  /** Counted by the daemon itself: queue drops, or left unpublished at a clean shutdown. */
  counted: number;
  /** missing − visible − counted: gone without any trace (no seq was ever assigned). */
  invisible: number;
}

export interface Observation {
  device: string;
  leaf: StoredMsg[];
  hub: StoredMsg[];
  /** Every publish the leaf saw on `sensors.>`: msg id → distinct bodies. */
  attempts: Map<string, Set<string>>;
  runs: DaemonRun[];
  faults: FaultEvent[];
}

export type LossCause =
  /** Allowed: the daemon was killed while its leaf was down; the reading was only in its memory. */
  | "daemon-killed-leaf-down"
  /**
   * Allowed: the leaf process was up but had restarted less than `LEAF_RECOVERY_MS` before the
   * kill, so the daemon had not yet been able to store what it took while the leaf was down.
   */
  | "daemon-killed-leaf-recovering"
  | "daemon-killed-leaf-up"
  /** Allowed, and visible: a seq the restarted daemon declared skipped (never a reading of its own; at most the last readings in flight at the kill). */
  | "seq-skipped"
  | "leaf-saw-it"
  | "near-leaf-kill"
  | "unexplained";

export interface SensorFigures {
  sensor: string;
  maxSeq: number;
  leaf: number;
  hub: number;
  lost: number;
  duplicated: number;
  collisions: number;
  silentDrops: number;
}

export interface Loss {
  sensor: string;
  seq: number;
  cause: LossCause;
  /** The daemon kill this loss is attributed to (index in `faults`), if any. */
  fault?: number;
}

export interface Verdict {
  sensors: SensorFigures[];
  totals: Omit<SensorFigures, "sensor" | "maxSeq">;
  losses: Loss[];
  lossByCause: Record<LossCause, number>;
  /** Losses per daemon kill (fault index → count), for RESULTS.md. */
  lossPerKill: { fault: number; kind: FaultKind; leafUp: boolean | undefined; leafReadyForMs?: number; lost: number }[];
  hubEqualsLeaf: boolean;
  hubOnly: number;
  leafOnly: number;
  /** Σ over daemon processes of new-message PubAcks (published − duplicates); a lower bound for killed ones. */
  daemonAckedNew: number;
  daemonDropped: number;
  daemonLeftUnpublished: number;
  runs: RunFigures[];
  /** Σ invisible over processes: readings a daemon accepted that left no gap and no count (lower bound for killed ones). */
  invisibleLosses: number;
  /** Broken invariants, human-readable; empty = pass. */
  broken: string[];
}

/**
 * After a leaf restart, how long the daemon may take to store again: its reconnect wait (0.5 s
 * + jitter), the stream check, at most 1 s of retry backoff while the stream recovers.
 */
export const LEAF_RECOVERY_MS = 2000;

const CAUSES: LossCause[] = ["daemon-killed-leaf-down", "daemon-killed-leaf-recovering", "seq-skipped", "daemon-killed-leaf-up", "leaf-saw-it", "near-leaf-kill", "unexplained"];
const DAEMON_KILLS = new Set<FaultKind>(["daemon-kill", "daemon-term"]);

/** Parses `<device>.<sensor>.<seq>`; undefined when it is not one. */
export function parseMsgId(id: string, device: string): { sensor: string; seq: number } | undefined {
  if (!id.startsWith(`${device}.`)) return undefined;
  const rest = id.slice(device.length + 1);
  const dot = rest.lastIndexOf(".");
  const seq = Number(rest.slice(dot + 1));
  if (dot <= 0 || !Number.isInteger(seq)) return undefined;
  return { sensor: rest.slice(0, dot), seq };
}

function bySensor(msgs: StoredMsg[]): Map<string, Map<number, StoredMsg[]>> {
  const out = new Map<string, Map<number, StoredMsg[]>>();
  for (const m of msgs) {
    let s = out.get(m.sensor);
    if (!s) out.set(m.sensor, (s = new Map()));
    const list = s.get(m.seq) ?? [];
    list.push(m);
    s.set(m.seq, list);
  }
  return out;
}

function killCause(f: FaultEvent): LossCause {
  if (!f.leafUp) return "daemon-killed-leaf-down";
  return (f.leafReadyForMs ?? Infinity) < LEAF_RECOVERY_MS ? "daemon-killed-leaf-recovering" : "daemon-killed-leaf-up";
}

/** Computes the figures and the broken invariants. */
export function analyse(o: Observation): Verdict {
  const leafBy = bySensor(o.leaf);
  const hubBy = bySensor(o.hub);
  const attemptsBy = new Map<string, Map<number, Set<string>>>();
  for (const [id, bodies] of o.attempts) {
    const p = parseMsgId(id, o.device);
    if (!p) continue;
    let s = attemptsBy.get(p.sensor);
    if (!s) attemptsBy.set(p.sensor, (s = new Map()));
    s.set(p.seq, bodies);
  }
  const sensors = [...new Set([...leafBy.keys(), ...hubBy.keys(), ...attemptsBy.keys()])].sort();
  const figures: SensorFigures[] = [];
  const losses: Loss[] = [];
  const daemonKills = o.faults.map((f, i) => ({ f, i })).filter(({ f }) => DAEMON_KILLS.has(f.kind));
  // Skipped seq ranges, each attributed to the fault that ended the process before the one that declared it.
  const skips = o.runs.flatMap((r, i) =>
    Object.entries(r.skipped ?? {}).map(([sensor, [from, to]]) => ({ sensor, from, to, fault: i > 0 ? o.runs[i - 1]!.fault : undefined })),
  );
  const leafKills = o.faults.filter((f) => f.kind === "leaf-kill");
  // Per sensor, where each restarted process's seqs begin (the end of its declared skip + 1).
  const starts = new Map<string, { seq: number; run: number }[]>();
  const stored = [...o.leaf, ...o.hub];
  o.runs.forEach((r, i) => {
    for (const [sensor, [, to]] of Object.entries(r.skipped ?? {})) {
      const list = starts.get(sensor) ?? [];
      list.push({ seq: to + 1, run: i });
      starts.set(sensor, list);
    }
    // A clean start (after a SIGTERM, which stores or keeps everything it took) declares no
    // skip: it begins right after the highest seq taken before it started.
    if (i > 0 && !r.skipped) {
      const top = new Map<string, number>();
      for (const m of stored) if (m.ts < r.startedAt && m.seq > (top.get(m.sensor) ?? 0)) top.set(m.sensor, m.seq);
      for (const [sensor, seq] of top) {
        const list = starts.get(sensor) ?? [];
        list.push({ seq: seq + 1, run: i });
        starts.set(sensor, list);
      }
    }
  });
  /** The run that issued `seq` of `sensor`, when the skips tell (undefined otherwise). */
  const ownerRun = (sensor: string, seq: number): number | undefined => {
    const list = starts.get(sensor);
    if (!list) return undefined;
    let owner: number | undefined;
    for (const b of list) if (b.seq <= seq && (owner === undefined || b.run > owner)) owner = b.run;
    return owner;
  };

  for (const sensor of sensors) {
    const leaf = leafBy.get(sensor) ?? new Map<number, StoredMsg[]>();
    const hub = hubBy.get(sensor) ?? new Map<number, StoredMsg[]>();
    const att = attemptsBy.get(sensor) ?? new Map<number, Set<string>>();
    const maxSeq = Math.max(0, ...leaf.keys(), ...hub.keys(), ...att.keys());
    const f: SensorFigures = { sensor, maxSeq, leaf: 0, hub: 0, lost: 0, duplicated: 0, collisions: 0, silentDrops: 0 };
    for (const list of leaf.values()) {
      f.leaf += list.length;
      f.duplicated += list.length - 1;
    }
    for (const list of hub.values()) {
      f.hub += list.length;
      f.duplicated += list.length - 1;
    }
    const storedSeqs = [...new Set([...leaf.keys(), ...hub.keys()])].sort((a, b) => a - b);
    const tsOf = (seq: number) => (leaf.get(seq) ?? hub.get(seq))![0]!.ts;
    for (let seq = 1; seq <= maxSeq; seq++) {
      const stored = [...(leaf.get(seq) ?? []), ...(hub.get(seq) ?? [])].map((m) => m.body);
      const bodies = new Set([...stored, ...(att.get(seq) ?? [])]);
      if (bodies.size > 1) {
        f.collisions++;
        // Every body the leaf saw that is stored nowhere was acked as a duplicate and lost.
        const kept = new Set(stored);
        f.silentDrops += [...bodies].filter((b) => !kept.has(b)).length;
      }
      if (stored.length > 0) continue;
      f.lost++;
      const skip = skips.find((k) => k.sensor === sensor && seq >= k.from && seq <= k.to);
      if (skip && !att.has(seq)) losses.push({ sensor, seq, cause: "seq-skipped", ...(skip.fault !== undefined ? { fault: skip.fault } : {}) });
      else losses.push(classify(sensor, seq, att.has(seq)));
    }
    figures.push(f);

    function classify(s: string, seq: number, seen: boolean): Loss {
      if (seen) return { sensor: s, seq, cause: "leaf-saw-it" };
      // The process that issued it: a restarted daemon starts right after the range it declared
      // skipped, so the seq belongs to the last process that started at or below it.
      const owner = ownerRun(s, seq);
      if (owner !== undefined) {
        const r = o.runs[owner]!;
        const f = r.fault === undefined ? undefined : o.faults[r.fault];
        if (f && DAEMON_KILLS.has(f.kind)) return { sensor: s, seq, cause: killCause(f), fault: r.fault };
      }
      // The window in which the reading was taken: after the last stored lower seq …
      let lo = -Infinity;
      for (const x of storedSeqs) if (x < seq) lo = tsOf(x);
      const from = lo === -Infinity ? -Infinity : lo - 50;
      // … and the daemon kill that ended the process holding it: the first kill after that.
      const kill = daemonKills.find(({ f: k }) => k.at >= from);
      const nextStored = storedSeqs.find((x) => x > seq);
      const to = nextStored === undefined ? Infinity : tsOf(nextStored);
      if (kill && kill.f.at <= to + 60_000) {
        return { sensor: s, seq, cause: killCause(kill.f), fault: kill.i };
      }
      if (leafKills.some((k) => k.at >= from && k.at <= to)) return { sensor: s, seq, cause: "near-leaf-kill" };
      return { sensor: s, seq, cause: "unexplained" };
    }
  }

  const totals = { leaf: 0, hub: 0, lost: 0, duplicated: 0, collisions: 0, silentDrops: 0 };
  for (const f of figures) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += f[k];

  const key = (m: StoredMsg) => `${m.msgId}\u0000${m.body}`;
  const leafKeys = new Set(o.leaf.map(key));
  const hubKeys = new Set(o.hub.map(key));
  const hubOnly = [...hubKeys].filter((k) => !leafKeys.has(k)).length;
  const leafOnly = [...leafKeys].filter((k) => !hubKeys.has(k)).length;

  const lossByCause = Object.fromEntries(CAUSES.map((c) => [c, 0])) as Record<LossCause, number>;
  for (const l of losses) lossByCause[l.cause]++;
  const perKill = new Map<number, number>();
  for (const l of losses) if (l.fault !== undefined) perKill.set(l.fault, (perKill.get(l.fault) ?? 0) + 1);
  const lossPerKill = daemonKills.map(({ f, i }) => ({ fault: i, kind: f.kind, leafUp: f.leafUp, ...(f.leafReadyForMs !== undefined ? { leafReadyForMs: f.leafReadyForMs } : {}), lost: perKill.get(i) ?? 0 }));

  const daemonAckedNew = o.runs.reduce((n, r) => n + (r.published - r.duplicates), 0);
  const daemonDropped = o.runs.reduce((n, r) => n + r.dropped, 0);
  const daemonLeftUnpublished = o.runs.reduce((n, r) => n + r.leftUnpublished, 0);

  const runs: RunFigures[] = o.runs.map((r, i) => {
    const end = r.endedAt ?? Infinity;
    const stored = o.leaf.filter((m) => m.ts >= r.startedAt && m.ts <= end).length;
    const visibleGaps = r.fault === undefined ? 0 : (perKill.get(r.fault) ?? 0);
    const missing = Math.max(0, r.accepted - stored);
    const counted = r.dropped + (r.end === "kill" ? 0 : r.leftUnpublished);
    const f = r.fault === undefined ? undefined : o.faults[r.fault];
    return {
      run: i,
      end: r.end,
      ...(r.fault !== undefined ? { fault: r.fault } : {}),
      ...(f?.leafUp !== undefined ? { leafUpAtEnd: f.leafUp } : {}),
      ...(f?.leafReadyForMs !== undefined ? { leafReadyForMs: f.leafReadyForMs } : {}),
      accepted: r.accepted,
      stored,
      missing,
      visibleGaps,
      counted,
      invisible: Math.max(0, missing - visibleGaps - counted),
    };
  });
  const invisibleLosses = runs.reduce((n, r) => n + r.invisible, 0);

  const broken: string[] = [];
  if (invisibleLosses > 0) broken.push(`${invisibleLosses} readings accepted by a daemon left neither a seq gap nor a count (silent; lower bound)`);
  if (totals.duplicated > 0) broken.push(`${totals.duplicated} duplicated msg ids stored`);
  if (totals.collisions > 0) broken.push(`${totals.collisions} collisions (one msg id, two bodies)`);
  if (totals.silentDrops > 0) broken.push(`${totals.silentDrops} silent drops (acked as duplicates of another reading)`);
  if (hubOnly + leafOnly > 0) broken.push(`hub != leaf (${leafOnly} only on the leaf, ${hubOnly} only on the hub)`);
  if (daemonAckedNew > leafKeys.size) broken.push(`the daemon counted ${daemonAckedNew} new PubAcks but the leaf holds ${leafKeys.size}`);
  const notAllowed = losses.length - lossByCause["daemon-killed-leaf-down"] - lossByCause["daemon-killed-leaf-recovering"] - lossByCause["seq-skipped"];
  if (notAllowed > 0) {
    const parts = CAUSES.filter((c) => c !== "daemon-killed-leaf-down" && c !== "daemon-killed-leaf-recovering" && c !== "seq-skipped" && lossByCause[c] > 0).map((c) => `${lossByCause[c]} ${c}`);
    broken.push(`${notAllowed} lost readings not explained by a daemon kill while the leaf was down (${parts.join(", ")})`);
  }
  return { sensors: figures, totals, losses, lossByCause, lossPerKill, hubEqualsLeaf: hubOnly + leafOnly === 0, hubOnly, leafOnly, daemonAckedNew, daemonDropped, daemonLeftUnpublished, runs, invisibleLosses, broken };
}
