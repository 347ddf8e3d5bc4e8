/**
 * Rejects regular expressions that can take exponential time (ReDoS) before a config that
 * carries them is applied: a remote `pattern` like `(a+)+$` would otherwise block the event loop
 * for seconds per line (9 s on 29 characters, issue 18) and wedge every device it is pushed to.
 *
 * The pattern is parsed with `ret` (the tokenizer fastify's `safe-regex2` uses) and rejected when
 * 1. a quantifier sits inside another and one of them is unbounded (`*`, `+`, `{n,}`) —
 *    `(a+)+`, `(\w+\s?)*`, `(.*a){12}` (safe-regex2's star-height rule, but `?` and `{0,1}` do
 *    not count, so the common `-?\d+(\.\d+)?` is accepted: safe-regex2 itself rejects it);
 * 2. an unbounded quantifier repeats alternatives that can start with the same character, or
 *    something that can match the empty string — `(a|a)*`, `(\d|\w)+`, `(a?)*`;
 * 3. it uses a back-reference (`\1`, `\k<name>`), which no checker can bound.
 * Polynomial patterns (`.*=.*`) pass: lines are capped by `maxLineLength`, which bounds them.
 */
import ret, { types, type Root, type Token } from "ret";

// `ret` is CommonJS whose module.exports is the tokenizer; its typings describe a namespace.
const tokenize = ret as unknown as (pattern: string) => Root;

type FirstChars = Set<number> | "any";

const MAX_PATTERN_LENGTH = 1000;
const MAX_SET_ENUMERATION = 512;

/**
 * What is wrong with `pattern` as a line pattern: not a valid JavaScript regular expression, or
 * unsafe (see the file comment). Undefined when it is fine. Never throws.
 */
export function linePatternProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
  return unsafeRegexProblem(pattern);
}

/** Why `pattern` is unsafe to run on untrusted lines, or undefined when it is safe. Never throws. */
export function unsafeRegexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `pattern is ${pattern.length} characters long; keep it under ${MAX_PATTERN_LENGTH}`;
  if (/\\k<|\\[1-9]/.test(pattern)) {
    return "pattern uses a back-reference (\\1 or \\k<name>), which can take exponential time on some lines: match the repeated text explicitly instead";
  }
  let root: Root;
  try {
    root = tokenize(pattern);
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
  return walk(children(root), { count: 0, unbounded: false });
}

/** The token lists under `t` (one per alternative, or its stack). */
function children(t: Token | Root): Token[][] {
  if (t.type === types.REPETITION) return [[t.value]];
  if (t.type === types.ROOT || t.type === types.GROUP) return t.options ?? (t.stack ? [t.stack] : []);
  return [];
}

/** `outer`: the repetitions (max > 1) around this list: how many, and whether one is unbounded. */
function walk(lists: Token[][], outer: { count: number; unbounded: boolean }): string | undefined {
  for (const list of lists) {
    for (const t of list) {
      let next = outer;
      if (t.type === types.REPETITION && t.max > 1) {
        const unbounded = t.max === Infinity;
        if (outer.count > 0 && (unbounded || outer.unbounded)) {
          return `pattern nests a quantifier inside another (like (a+)+ or (.*a){12}), which can take exponential time on some lines: quantify the inner part only, e.g. (a+)+ → a+`;
        }
        if (unbounded) {
          const problem = overlappingBranches(t.value);
          if (problem) return problem;
        }
        next = { count: outer.count + 1, unbounded: outer.unbounded || unbounded };
      }
      const inner = walk(children(t), next);
      if (inner) return inner;
    }
  }
  return undefined;
}

/** Rule 2: the repeated token's alternatives must start with disjoint characters and never be empty. */
function overlappingBranches(t: Token): string | undefined {
  const branches = t.type === types.GROUP ? (t.options ?? [t.stack ?? []]) : [[t]];
  const seen = new Set<number>();
  for (const b of branches) {
    const first = firstChars(b);
    if (first === "empty") return "pattern repeats something that can match the empty string (like (a?)*), which can take exponential time: make the repeated part match at least one character";
    if (branches.length === 1) continue;
    if (first === "any") return "pattern repeats alternatives that can start with the same character (like (a|a)* or (\\d|\\w)+), which can take exponential time on some lines: make the alternatives start differently, or use one character class";
    for (const c of first) {
      if (seen.has(c)) return "pattern repeats alternatives that can start with the same character (like (a|a)* or (\\d|\\w)+), which can take exponential time on some lines: make the alternatives start differently, or use one character class";
      seen.add(c);
    }
  }
  return undefined;
}

/** The characters a token sequence can start with; "any" when too many to list; "empty" when it can match "". */
function firstChars(list: Token[]): FirstChars | "empty" {
  const out = new Set<number>();
  for (const t of list) {
    const r = firstOf(t);
    if (r.chars === "any") return "any";
    for (const c of r.chars) out.add(c);
    if (!r.nullable) return out;
  }
  return "empty";
}

function firstOf(t: Token): { chars: FirstChars; nullable: boolean } {
  switch (t.type) {
    case types.CHAR:
      return { chars: new Set([t.value]), nullable: false };
    case types.POSITION:
      return { chars: new Set(), nullable: true };
    case types.SET:
      return { chars: setChars(t), nullable: false };
    case types.REPETITION: {
      const inner = firstOf(t.value);
      return { chars: inner.chars, nullable: t.min === 0 || inner.nullable };
    }
    case types.GROUP: {
      if (t.followedBy || t.notFollowedBy || t.lookBehind) return { chars: new Set(), nullable: true };
      const chars = new Set<number>();
      let nullable = false;
      for (const b of t.options ?? [t.stack ?? []]) {
        const f = firstChars(b);
        if (f === "any") return { chars: "any", nullable: false };
        if (f === "empty") nullable = true;
        else for (const c of f) chars.add(c);
      }
      return { chars, nullable };
    }
    default:
      return { chars: "any", nullable: false };
  }
}

function setChars(t: Extract<Token, { type: types.SET }>): FirstChars {
  if (t.not) return "any";
  const out = new Set<number>();
  for (const s of t.set) {
    if (s.type === types.CHAR) out.add(s.value);
    else if (s.type === types.RANGE) {
      if (s.to - s.from > MAX_SET_ENUMERATION) return "any";
      for (let c = s.from; c <= s.to; c++) out.add(c);
    } else {
      const inner = setChars(s);
      if (inner === "any") return "any";
      for (const c of inner) out.add(c);
    }
    if (out.size > MAX_SET_ENUMERATION) return "any";
  }
  return out;
}
