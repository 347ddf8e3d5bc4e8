/**
 * deploy/grafana/edge-gateway.json and deploy/prometheus/alerts.yml against the real thing: the
 * files have the shape Grafana and Prometheus expect, every metric they name is in a real
 * /metrics scrape of a running daemon (hub + leaf + sourced hub stream), and — where Debian's
 * `prometheus` package is installed (CI installs it) — `promtool check rules` passes and a real
 * Prometheus scraping that daemon evaluates every alert rule and every dashboard query without
 * error. Also the metric the buffer alert rests on: the oldest unsent reading's age.
 */
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import * as z from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDevice, ensureHubConfigBucket, ensureHubStream } from "../../src/cloud/hub.js";
import type { Daemon } from "../../src/daemon/daemon.js";
import { parsePrometheus } from "../control/helpers.js";
import { startDaemon } from "../edge/helpers.js";
import { freePort } from "../helpers/mosquitto.js";
import { cleanupNats, startHubAndLeaves, waitForLeafLink, type HubAndLeaves } from "../helpers/nats.js";
import { cleanupTempDirs, killAll, startProc, stopProc, tempDir, type Proc } from "../helpers/procs.js";
import { streamCount } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";
import { REPO, explain, run } from "./run.js";

const DASHBOARD = join(REPO, "deploy/grafana/edge-gateway.json");
const ALERTS = join(REPO, "deploy/prometheus/alerts.yml");

function has(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const HAVE_PROMETHEUS = has("prometheus") && has("promtool");

// The essentials of Grafana's dashboard JSON model (schemaVersion 39) that an import relies on.
const datasourceRef = z.object({ type: z.literal("prometheus"), uid: z.literal("${datasource}") });
const target = z.object({ refId: z.string().min(1), expr: z.string().min(1), datasource: datasourceRef, legendFormat: z.string().optional() }).passthrough();
const panel = z
  .object({
    id: z.number().int().positive(),
    type: z.enum(["stat", "timeseries", "state-timeline", "table", "gauge", "bargauge"]),
    title: z.string().min(1),
    datasource: datasourceRef,
    gridPos: z.object({ x: z.number().int().min(0).max(23), y: z.number().int().min(0), w: z.number().int().min(1).max(24), h: z.number().int().min(1) }),
    targets: z.array(target).min(1),
    fieldConfig: z.object({ defaults: z.record(z.string(), z.unknown()), overrides: z.array(z.unknown()) }),
    options: z.record(z.string(), z.unknown()),
  })
  .passthrough();
const dashboardSchema = z
  .object({
    uid: z.string().regex(/^[a-zA-Z0-9_-]{1,40}$/),
    title: z.string().min(1),
    schemaVersion: z.number().int().min(36),
    version: z.number().int(),
    editable: z.boolean(),
    time: z.object({ from: z.string(), to: z.string() }),
    refresh: z.string(),
    annotations: z.object({ list: z.array(z.unknown()) }),
    templating: z.object({ list: z.array(z.object({ name: z.string(), type: z.string() }).passthrough()) }),
    panels: z.array(panel).min(1),
  })
  .passthrough();

const ruleSchema = z
  .object({
    alert: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/),
    expr: z.string().min(1),
    for: z.string().regex(/^\d+[smh]$/).optional(),
    labels: z.object({ severity: z.enum(["critical", "warning", "info"]) }).passthrough(),
    annotations: z.object({ summary: z.string().min(1), description: z.string().min(1) }).passthrough(),
  })
  .strict();
const alertsSchema = z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(ruleSchema).min(1) }).strict()).min(1) }).strict();

type Dashboard = z.infer<typeof dashboardSchema>;
type Alerts = z.infer<typeof alertsSchema>;

/** A dashboard query made runnable outside Grafana: its variables replaced by what they mean. */
function concrete(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$device", ".*");
}

// Keywords and aggregation operators (these may precede `by (…)` instead of a parenthesis).
const PROMQL_WORDS = new Set(["by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool", "offset", "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels, strings or durations. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "$1");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index + m[0].length).trimStart();
    if (after.startsWith("(") || PROMQL_WORDS.has(m[0])) continue;
    names.add(m[0]);
  }
  return [...names];
}

let dashboard: Dashboard;
let alerts: Alerts;
let env: HubAndLeaves;
let daemon: Daemon;
let address: string;

async function scrape(): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

function sample(text: string, name: string): number | undefined {
  return parsePrometheus(text).samples.find((s) => s.name === name)?.value;
}

beforeAll(async () => {
  dashboard = dashboardSchema.parse(JSON.parse(await readFile(DASHBOARD, "utf8")));
  alerts = alertsSchema.parse(parseYaml(await readFile(ALERTS, "utf8")));
  env = await startHubAndLeaves(["pi-obs"]);
  const nc = await env.hub.connect();
  await ensureHubStream(nc);
  await ensureHubConfigBucket(nc);
  await addDevice(nc, "pi-obs");
  await nc.close();
  daemon = await startDaemon(env.leaves[0]!, "pi-obs", { interval: "100ms", extra: { http: { listen: "127.0.0.1:0" } } });
  address = daemon.operations!.http!.address!;
});

afterAll(async () => {
  await daemon?.stop();
  await env?.stop();
  await killAll();
  await cleanupNats();
  await cleanupTempDirs();
});

describe("dashboards and alerts", () => {
  it("the dashboard has Grafana's shape: unique panel ids and refIds, panels inside the 24-column grid, a Prometheus datasource variable", () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      const refIds = p.targets.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(vars.get("device")).toMatchObject({ type: "query", includeAll: true, allValue: ".*" });
    // The fleet overview the issue asks for.
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join("\n");
    for (const topic of ["uplink", "buffer", "oldest unsent", "hub source lag", "readings/s", "driver", "config revision", "config rejections"]) {
      expect(titles, topic).toContain(topic);
    }
  });

  it("every metric the dashboard and the alerts use exists in a real /metrics scrape of a running daemon", async () => {
    await waitFor(() => daemon.link.hub === "up" && daemon.link.hubLag !== undefined, { what: "link up with the hub's lag", timeout: 30_000 });
    const families = parsePrometheus(await scrape()).types;
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr))];
    const used = new Set(exprs.flatMap(metricNames));
    used.add("edge_gateway_info"); // the device variable's label_values()
    // `up` is Prometheus' own per-target series.
    const missing = [...used].filter((n) => n !== "up" && !families.has(n));
    expect(missing).toEqual([]);
    expect(used.size).toBeGreaterThan(8);
  });

  it("alerts cover device offline, old buffer, hub lag, config rejected, driver failing", () => {
    const names = alerts.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toEqual(expect.arrayContaining(["EdgeGatewayDeviceOffline", "EdgeGatewayBufferOld", "EdgeGatewayHubLagGrowing", "EdgeGatewayConfigRejected", "EdgeGatewayDriverFailing"]));
  });

  it.skipIf(!HAVE_PROMETHEUS)("promtool check rules passes on alerts.yml", async () => {
    const r = await run("promtool", ["check", "rules", ALERTS]);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
  });

  it.skipIf(!HAVE_PROMETHEUS)("a real Prometheus scrapes the daemon and evaluates every alert rule and dashboard query without error", async () => {
    const dir = await tempDir("egw-prometheus-");
    const port = await freePort();
    const config = join(dir, "prometheus.yml");
    await writeFile(
      config,
      [
        "global: { scrape_interval: 1s, evaluation_interval: 1s }",
        `rule_files: [${JSON.stringify(ALERTS)}]`,
        "scrape_configs:",
        "  - job_name: edge-gateway",
        `    static_configs: [{ targets: [${JSON.stringify(address)}] }]`,
        "",
      ].join("\n"),
    );
    let prom: Proc | undefined;
    try {
      prom = startProc("prometheus", [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"], { cwd: dir });
      const p = prom;
      const api = async <T>(path: string): Promise<T> => {
        if (p.child.exitCode !== null) throw new Error(`prometheus exited: ${p.stderr()}`);
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return (await res.json()) as T;
      };
      type Targets = { data: { activeTargets: { health: string; lastError: string }[] } };
      await waitFor(async () => (await api<Targets>("/api/v1/targets")).data.activeTargets[0]?.health === "up", { what: "prometheus scraping the daemon", timeout: 30_000 });
      // Every rule evaluated at least once by Prometheus itself, none in error.
      type Rules = { data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] } };
      const rules = await waitFor(
        async () => {
          const all = (await api<Rules>("/api/v1/rules")).data.groups.flatMap((g) => g.rules);
          return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith("0001-")) ? all : undefined;
        },
        { what: "every rule evaluated once", timeout: 30_000 },
      );
      expect(rules.map((r) => r.name).sort()).toEqual(alerts.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort());
      expect(rules.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);

      type Query = { status: string; error?: string; data?: { result: { metric: Record<string, string> }[] } };
      const queries = [...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)), ...dashboard.panels.flatMap((p) => p.targets.map((t) => concrete(t.expr)))];
      for (const q of queries) {
        const r = await api<Query>(`/api/v1/query?query=${encodeURIComponent(q)}`);
        expect(r, q).toMatchObject({ status: "success" });
      }
      // The series behind the panels are there, with the device label.
      const link = await api<Query>(`/api/v1/query?query=${encodeURIComponent("edge_gateway_link_up")}`);
      expect(link.data?.result[0]?.metric).toMatchObject({ device: "pi-obs", job: "edge-gateway" });
      const devices = await api<{ status: string; data: string[] }>(`/api/v1/label/device/values?match[]=edge_gateway_info`);
      expect(devices.data).toEqual(["pi-obs"]);
    } finally {
      if (prom) await stopProc(prom);
    }
  });

  it("edge_gateway_leaf_oldest_unsent_age_seconds: near 0 while the hub keeps up, grows while the link is cut, back down after catch-up", async () => {
    await waitFor(async () => {
      const age = sample(await scrape(), "edge_gateway_leaf_oldest_unsent_age_seconds");
      return age !== undefined && age < 5;
    }, { what: "oldest unsent age near 0 with the link up", timeout: 30_000 });
    await env.links[0]!.cut();
    await waitFor(() => daemon.link.hub === "down", { what: "the daemon sees the link down", timeout: 20_000 });
    const cutAt = Date.now();
    await waitFor(async () => (sample(await scrape(), "edge_gateway_leaf_oldest_unsent_age_seconds") ?? 0) >= 10, { what: "oldest unsent age to grow past 10 s", timeout: 40_000 });
    // It is the age of the first reading after the cut, not of the whole buffer.
    const text = await scrape();
    const unsent = sample(text, "edge_gateway_leaf_oldest_unsent_age_seconds")!;
    expect(unsent).toBeLessThan(sample(text, "edge_gateway_leaf_stream_oldest_age_seconds")!);
    expect(unsent).toBeLessThanOrEqual((Date.now() - cutAt) / 1000 + 10);
    const leafNc = await env.leaves[0]!.connect();
    const hubNc = await env.hub.connect();
    try {
      // Every reading stored by now is over 10 s old once the age is back under 5 s.
      const storedDuringCut = await streamCount(leafNc, "TELEMETRY");
      await env.links[0]!.restore();
      await waitForLeafLink(env.leaves[0]!, 30_000);
      // Sources recover 10–30 s after a reconnect on 2.9.10; the age must not drop before that
      // (the source's lag is stale until it resumes).
      await waitFor(async () => (sample(await scrape(), "edge_gateway_leaf_oldest_unsent_age_seconds") ?? Infinity) < 5, { what: "oldest unsent age back near 0 after catch-up", timeout: 90_000 });
      expect(await streamCount(hubNc, "TELEMETRY")).toBeGreaterThanOrEqual(storedDuringCut);
    } finally {
      await leafNc.close();
      await hubNc.close();
    }
  });
});
