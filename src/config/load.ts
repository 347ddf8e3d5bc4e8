import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseDocument } from "yaml";
import type * as z from "zod";
import { ConfigError, GatewayError, type ConfigProblem } from "../errors.js";
import { bootstrapSchema, remoteDocumentSchema, type BootstrapConfig, type RemoteDocument } from "./schema.js";

/** `["sensors", 2, "pattern"]` → `sensors[2].pattern`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function problemsOf(error: z.ZodError): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}: remove or correct ${issue.keys.length > 1 ? "them" : "it"} (see docs/configuration.md)`;
    } else if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
      const key = issue.path[issue.path.length - 1];
      message = `required: add \`${String(key)}\` (${issue.message.replace(/^Invalid input: /, "")}; see docs/configuration.md)`;
    } else if (issue.code === "invalid_union" && issue.message === "Invalid input" && issue.errors.length > 0) {
      // `false | {…}` unions (http, remoteConfig): report what is wrong inside the object
      // branch, which is what the user meant to write, instead of a bare "Invalid input".
      const branch = issue.errors.find((errs) => errs.some((e) => e.path.length > 0)) ?? issue.errors[issue.errors.length - 1]!;
      for (const inner of branch) {
        pushProblem({ path: formatPath([...issue.path, ...inner.path]), message: inner.message });
      }
      continue;
    }
    pushProblem({ path: formatPath(issue.path), message });
  }
  return problems;

  function pushProblem(p: ConfigProblem): void {
    const key = `${p.path}\0${p.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(p);
    }
  }
}

export type Validation<T> = { ok: true; value: T } | { ok: false; problems: ConfigProblem[] };

/** Validates a parsed bootstrap object. Resolves defaults that depend on other fields. */
export function validateBootstrap(input: unknown, env: NodeJS.ProcessEnv = process.env): Validation<BootstrapConfig> {
  const withEnvDefaults =
    input && typeof input === "object" && !Array.isArray(input) && env.STATE_DIRECTORY && !("state" in input)
      ? { ...input, state: env.STATE_DIRECTORY.split(":")[0] }
      : input;
  const r = bootstrapSchema.safeParse(withEnvDefaults);
  if (!r.success) return { ok: false, problems: problemsOf(r.error) };
  const cfg = r.data;
  if (cfg.remoteConfig !== false && cfg.remoteConfig.cache === undefined) {
    cfg.remoteConfig.cache = join(cfg.state, "config.json");
  }
  return { ok: true, value: cfg };
}

/** Validates a remote config document (A6) as a whole. */
export function validateDocument(input: unknown): Validation<RemoteDocument> {
  const r = remoteDocumentSchema.safeParse(input);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: problemsOf(r.error) };
}

/** Parses YAML (or JSON, a subset) text; syntax errors become problems with line numbers. */
export function parseYaml(text: string): Validation<unknown> {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "",
        message: `YAML syntax error: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`,
      })),
    };
  }
  return { ok: true, value: doc.toJS() ?? {} };
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const hint =
      code === "ENOENT"
        ? "the file does not exist; pass --config with the right path"
        : code === "EACCES"
          ? "permission denied; run as a user that can read it"
          : code === "EISDIR"
            ? "it is a directory; give the file, e.g. /etc/edge-gateway/gateway.yaml"
            : String(cause);
    throw new GatewayError("EGW_CONFIG_READ", `cannot read ${file}: ${hint}`, { cause });
  }
}

/**
 * Reads and validates a bootstrap file.
 * @throws ConfigError listing every problem with its path; GatewayError EGW_CONFIG_READ.
 */
export async function loadBootstrap(file: string, env: NodeJS.ProcessEnv = process.env): Promise<BootstrapConfig> {
  const parsed = parseYaml(await readText(file));
  if (!parsed.ok) throw new ConfigError(file, parsed.problems);
  const v = validateBootstrap(parsed.value, env);
  if (!v.ok) throw new ConfigError(file, v.problems);
  return v.value;
}

/** Reads and validates a remote document file (JSON or YAML). */
export async function loadDocument(file: string): Promise<RemoteDocument> {
  const parsed = parseYaml(await readText(file));
  if (!parsed.ok) throw new ConfigError(file, parsed.problems);
  const v = validateDocument(parsed.value);
  if (!v.ok) throw new ConfigError(file, v.problems);
  return v.value;
}
