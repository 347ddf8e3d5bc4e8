/**
 * Dockerfile.arm64 and docker-compose.yml. No Docker engine runs on these machines, so no
 * image is built here (docs/deploy.md says how: `docker buildx build --platform linux/arm64
 * -f Dockerfile.arm64 .`). Instead:
 *  - two Dockerfile linters from the npm registry (hadolint is in neither npm nor Debian):
 *    dockerfile-utils (the Docker language service's validator) and dockerfilelint;
 *  - Debian's docker-compose 1.29 validates the compose file (`config` needs no engine);
 *  - the stages are checked against package.json / package-lock.json;
 *  - the build stage's own commands (minus apt-get and the arch guard) run here in a temp
 *    copy of the repo, proving they produce what the runtime stage copies.
 * The tools come from scripts/install-lint-tools.sh (run here when missing).
 */
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYamlText } from "yaml";
import { bootstrapSchema } from "../../src/config/schema.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { REPO, explain, parseUnit, run, timespanSeconds } from "./run.js";

const TOOLS = join(REPO, ".tmp/lint-tools/node_modules/.bin");
const DOCKERFILE = join(REPO, "Dockerfile.arm64");

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuations joined, comments dropped). */
function stagesOf(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (!line.trim() || line.trim().startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + " " + lines[++i]!.trim();
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: ${line}`);
    const ins = { keyword: m[1]!, args: m[2]!.trim(), line: start + 1 };
    if (ins.keyword === "FROM") {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: f![1]!, name: f![2] ?? String(stages.length), instructions: [] });
    } else stages.at(-1)?.instructions.push(ins);
  }
  return stages;
}

let dockerfile: string;
let stages: Stage[];
let pkg: { engines: { node: string }; bin: Record<string, string>; allowScripts: Record<string, boolean> };
let lock: { packages: Record<string, { dev?: boolean; optional?: boolean; hasInstallScript?: boolean }> };

beforeAll(async () => {
  const haveCompose = (await run("docker-compose", ["version"])).code === 0;
  if (!existsSync(join(TOOLS, "dockerfile-utils")) || !existsSync(join(TOOLS, "dockerfilelint")) || !haveCompose) {
    const r = await run("bash", [join(REPO, "scripts/install-lint-tools.sh")], { timeoutMs: 180_000 });
    expect(r.code, `scripts/install-lint-tools.sh: ${explain(r)}`).toBe(0);
  }
  dockerfile = await readFile(DOCKERFILE, "utf8");
  stages = stagesOf(dockerfile);
  pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8"));
  lock = JSON.parse(await readFile(join(REPO, "package-lock.json"), "utf8"));
}, 200_000);

afterAll(cleanupTempDirs);

describe("Dockerfile.arm64", () => {
  it("passes dockerfile-utils lint", async () => {
    const r = await run(join(TOOLS, "dockerfile-utils"), ["lint", DOCKERFILE]);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout.trim(), explain(r)).toBe("");
  });

  it("passes dockerfilelint", async () => {
    const r = await run(join(TOOLS, "dockerfilelint"), ["--json", DOCKERFILE]);
    expect(r.code, explain(r)).toBe(0);
    const report = JSON.parse(r.stdout) as { totalIssues: number };
    expect(report.totalIssues, r.stdout).toBe(0);
  });

  it("the linters do catch a broken Dockerfile (so passing means something)", async () => {
    const broken = join(await tempDir("egw-df-"), "Dockerfile");
    await writeFile(broken, dockerfile.replace("COPY --from=build /src/dist ./dist", "COPY --from=build /src/dist").replace("EXPOSE 9464", "EXPOSE nine"));
    const a = await run(join(TOOLS, "dockerfile-utils"), ["lint", broken]);
    expect(a.code).not.toBe(0);
    expect(a.stdout).toContain("COPY requires at least two arguments");
    const b = await run(join(TOOLS, "dockerfilelint"), [broken]);
    expect(b.code).not.toBe(0);
  });

  it("is two stages on a Node image whose major satisfies package.json engines.node", () => {
    expect(stages.map((s) => s.name)).toEqual(["build", "runtime"]);
    const min = Number(/^>=\s*(\d+)/.exec(pkg.engines.node)?.[1]);
    for (const s of stages) {
      const m = /^node:(\d+)-bookworm-slim$/.exec(s.from);
      expect(m, s.from).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(min);
    }
  });

  it("builds every production native module and only those (package.json allowScripts, lock file)", () => {
    const build = stages[0]!.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(build).toMatch(/npm ci --ignore-scripts/);
    const rebuilt = /npm rebuild ([^&\n]+)/.exec(build)![1]!.trim().split(/\s+/).sort();
    // Production packages with install scripts: these must be built for the runtime. Optional
    // ones are not: better-sqlite3 serves only the cloud-side `cloud ingest --sink sqlite:`,
    // never the daemon, and says how to install it when it is not built.
    const prodWithScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path.startsWith("node_modules/") && p.hasInstallScript && !p.dev && !p.optional)
      .map(([path]) => path.slice("node_modules/".length))
      .sort();
    expect(rebuilt).toEqual(prodWithScripts);
    for (const name of rebuilt) expect(pkg.allowScripts[name], `${name} in allowScripts`).toBe(true);
  });

  it("the build stage copies only files that exist and that .dockerignore lets through", async () => {
    const ignore = (await readFile(join(REPO, ".dockerignore"), "utf8")).split("\n").filter((l) => l && !l.startsWith("#"));
    for (const ins of stages[0]!.instructions.filter((i) => i.keyword === "COPY")) {
      const parts = ins.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(join(REPO, src)), `line ${ins.line}: ${src}`).toBe(true);
        expect(ignore, `line ${ins.line}: ${src} is excluded by .dockerignore`).not.toContain(src.split("/")[0]);
      }
    }
  });

  it("the runtime stage has what the CLI needs, runs as a non-root user and checks /healthz", async () => {
    const rt = stages[1]!.instructions;
    const copied = rt.filter((i) => i.keyword === "COPY").map((i) => i.args);
    for (const needed of ["/src/node_modules", "/src/dist", "/src/bin", "/src/package.json"]) {
      expect(copied.some((c) => c.startsWith("--from=build ") && c.split(/\s+/).includes(needed)), needed).toBe(true);
    }
    const user = rt.filter((i) => i.keyword === "USER").at(-1)?.args;
    expect(user).toBe("edge-gateway");
    const entry = JSON.parse(rt.find((i) => i.keyword === "ENTRYPOINT")!.args) as string[];
    // The same node flags as the bin's shebang (what systemd's ExecStart runs).
    const bin = pkg.bin["edge-gateway"]!;
    const shebang = (await readFile(join(REPO, bin), "utf8")).split("\n")[0]!;
    const flags = shebang.split(/\s+/).filter((a) => a.startsWith("--"));
    expect(flags).toContain("--max-semi-space-size=1");
    expect(entry).toEqual(["node", ...flags, `/opt/edge-gateway/${bin}`]);
    // …and the environment it sets (`env -S NAME=value node …`) is the image's too.
    const assignments = shebang.split(/\s+/).filter((a) => /^[A-Z_]+=/.test(a));
    expect(assignments).toContain("MALLOC_ARENA_MAX=1");
    const env = rt.filter((i) => i.keyword === "ENV").map((i) => i.args).join(" ");
    for (const a of assignments) expect(env.split(/\s+/), a).toContain(a);
    expect(JSON.parse(rt.find((i) => i.keyword === "CMD")!.args)).toEqual(["run", "--config", "/etc/edge-gateway/gateway.yaml"]);
    const volumes = JSON.parse(rt.find((i) => i.keyword === "VOLUME")!.args) as string[];
    expect(volumes.sort()).toEqual(["/etc/edge-gateway", "/var/lib/edge-gateway"]);
    // The healthcheck asks the port the daemon listens on by default.
    const defaults = bootstrapSchema.parse({ device: { id: "d", region: "r" } });
    const listen = defaults.http === false ? "" : defaults.http.listen;
    const hc = rt.find((i) => i.keyword === "HEALTHCHECK")!.args;
    expect(hc).toContain(`http://${listen}/healthz`);
    expect(rt.find((i) => i.keyword === "ENV")!.args).toContain("STATE_DIRECTORY=/var/lib/edge-gateway");
  });

  it("the healthcheck command is valid JavaScript for node -e", async () => {
    const hc = stages[1]!.instructions.find((i) => i.keyword === "HEALTHCHECK")!.args;
    const cmd = JSON.parse(hc.slice(hc.indexOf("CMD") + 3).trim()) as string[];
    expect(cmd.slice(0, 2)).toEqual(["node", "-e"]);
    // Nothing listens on this port in the test: the script must exit 1 (unhealthy), not crash.
    const r = await run("node", ["-e", cmd[2]!.replace("127.0.0.1:9464", "127.0.0.1:9")]);
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toBe("");
  });

  it("the build stage's commands produce what the runtime stage copies (run here, amd64)", async () => {
    const work = await tempDir("egw-docker-build-");
    const src = join(work, "src-root");
    await mkdir(src);
    for (const ins of stages[0]!.instructions) {
      if (ins.keyword === "COPY") {
        const parts = ins.args.split(/\s+/);
        const dest = parts.at(-1)!;
        for (const s of parts.slice(0, -1)) {
          const target = dest.endsWith("/") ? join(src, dest, s.split("/").at(-1)!) : join(src, dest);
          await mkdir(dirname(target), { recursive: true });
          await cp(join(REPO, s), target, { recursive: true });
        }
      } else if (ins.keyword === "RUN" && !/apt-get|dpkg --print-architecture/.test(ins.args)) {
        const r = await run("sh", ["-ec", ins.args], { cwd: src, timeoutMs: 300_000 });
        expect(r.code, `line ${ins.line}: ${explain(r)}`).toBe(0);
      }
    }
    expect(existsSync(join(src, "dist/bundle/main.js"))).toBe(true);
    expect(existsSync(join(src, "node_modules/epoll/build/Release/epoll.node"))).toBe(true);
    expect(existsSync(join(src, "node_modules/typescript")), "dev dependencies pruned").toBe(false);
    // The pruned tree runs the CLI: `check` on a minimal valid bootstrap file.
    const cfg = join(work, "gateway.yaml");
    await writeFile(cfg, "device: { id: pi-docker, region: test }\n");
    const r = await run("node", [join(src, "bin/edge-gateway.js"), "check", "--config", cfg], { env: { PATH: process.env.PATH } });
    expect(r.code, explain(r)).toBe(0);
  }, 320_000);
});

describe("docker-compose.yml", () => {
  it("is valid for docker-compose (config -q)", async () => {
    const r = await run("docker-compose", ["-f", join(REPO, "docker-compose.yml"), "config", "-q"], { cwd: REPO });
    expect(r.code, explain(r)).toBe(0);
  });

  it("runs the leaf and the gateway sharing loopback, config read-only, state on a volume", async () => {
    const doc = parseYamlText(await readFile(join(REPO, "docker-compose.yml"), "utf8")) as {
      services: Record<string, { image: string; command?: string[]; network_mode?: string; volumes: string[]; stop_grace_period?: string; build?: { dockerfile: string } }>;
    };
    const { nats, gateway } = doc.services;
    expect(nats!.image).toMatch(/^nats:2\.\d+/);
    expect(nats!.command).toEqual(["--config", "/etc/edge-gateway/leaf.conf"]);
    expect(gateway!.network_mode).toBe("service:nats");
    expect(gateway!.build!.dockerfile).toBe("Dockerfile.arm64");
    expect(gateway!.volumes).toContain("./deploy/edge-gateway:/etc/edge-gateway:ro");
    expect(gateway!.volumes.some((v) => v.endsWith(":/var/lib/edge-gateway"))).toBe(true);
    // Same stop budget as the systemd unit.
    const unit = parseUnit(await readFile(join(REPO, "systemd/edge-gateway.service"), "utf8"));
    expect(timespanSeconds(gateway!.stop_grace_period!)).toBe(timespanSeconds(unit.get("Service")!.get("TimeoutStopSec")![0]!));
  });
});
