/**
 * Stages the runnable CLI (bin/, dist/, package.json and the production node_modules) in a
 * fresh temp dir that any user can read, for tests that run the CLI as another user
 * (`nobody`). A checkout may live where that user cannot look — Debian 12 creates home
 * directories 0700, so a clone under /root is unreadable to `nobody` — and the test must
 * not depend on where it was cloned. Files are hard-linked when the temp dir is on the same
 * filesystem (fast, no extra space), copied otherwise; either way modes are made readable.
 */
import { execFile } from "node:child_process";
import { chmod, cp, link, mkdir, readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../helpers/procs.js";
import { REPO } from "./run.js";

const execFileP = promisify(execFile);

/** Directories of the production dependency tree (what `npm install --omit=dev` would keep). */
async function productionModuleDirs(): Promise<string[]> {
  const { stdout } = await execFileP("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 }).catch(
    // npm ls exits 1 on an extraneous or invalid package yet still prints the tree.
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }),
  );
  const dirs = stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(join(REPO, "node_modules")));
  if (dirs.length === 0) throw new Error(`npm ls listed no production dependencies under ${REPO}node_modules: run npm ci first`);
  return dirs;
}

/** Hard-links (or, across filesystems, copies) the tree `from` to `to`, world-readable. */
async function linkTree(from: string, to: string): Promise<void> {
  const st = await stat(from);
  if (st.isDirectory()) {
    await mkdir(to, { recursive: true });
    await chmod(to, 0o755);
    for (const e of await readdir(from, { withFileTypes: true })) {
      if (e.isSymbolicLink()) await cp(join(from, e.name), join(to, e.name), { verbatimSymlinks: true });
      else await linkTree(join(from, e.name), join(to, e.name));
    }
    return;
  }
  // A hard link shares its inode (and mode) with the checkout, whose modes we never change:
  // a file others cannot read (or run) is copied instead and its copy made readable.
  const worldOk = (st.mode & 0o004) !== 0 && (!(st.mode & 0o100) || (st.mode & 0o001) !== 0);
  if (worldOk) {
    try {
      await link(from, to);
      return;
    } catch {
      // another filesystem: copy
    }
  }
  await cp(from, to);
  await chmod(to, (st.mode & 0o777) | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
}

/** Creates `dir` (and its missing parents below `root`), each 0755 whatever the umask. */
async function readableDir(root: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let d = dir; d.startsWith(`${root}/`); d = join(d, "..")) await chmod(d, 0o755);
}

/**
 * Returns the root of a staged copy of the CLI that every user can read and run
 * (`<root>/bin/edge-gateway.js`). Removed with the other temp dirs by `cleanupTempDirs()`.
 * Requires dist/ (built by the test suite's global setup).
 */
export async function stageCli(): Promise<string> {
  const root = await tempDir("egw-stage-");
  await chmod(root, 0o755);
  await linkTree(join(REPO, "package.json"), join(root, "package.json"));
  await linkTree(join(REPO, "bin"), join(root, "bin"));
  await linkTree(join(REPO, "dist"), join(root, "dist"));
  const dirs = await productionModuleDirs();
  // Nested dirs are inside their parent's tree already; stage each top-level one once.
  const tops = dirs.filter((d) => !dirs.some((p) => p !== d && d.startsWith(`${p}/`)));
  for (const d of tops) {
    const rel = relative(REPO, d);
    await readableDir(root, join(root, rel, ".."));
    await linkTree(d, join(root, rel));
  }
  return root;
}
