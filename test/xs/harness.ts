/**
 * A minimal mocha-compatible `describe`/`it` for running the core's tests inside XS (xsnap), where
 * mocha itself cannot run. Supports nesting, before/after/beforeEach/afterEach hooks, async tests and
 * `it.skip`. Prints one line per failure and ends with `xs: N passed, N failed` — the only line the
 * runner trusts, since xsnap exits 0 even when a module fails to load.
 */
type Fn = () => unknown;
interface Suite {
  name: string;
  tests: { name: string; fn: Fn | undefined }[];
  suites: Suite[];
  before: Fn[];
  after: Fn[];
  beforeEach: Fn[];
  afterEach: Fn[];
}

declare function print(...args: unknown[]): void;

const root: Suite = newSuite("");
let current = root;

function newSuite(name: string): Suite {
  return { name, tests: [], suites: [], before: [], after: [], beforeEach: [], afterEach: [] };
}

const g = globalThis as Record<string, unknown>;
function describe(name: string, body: () => void): void {
  const s = newSuite(name);
  current.suites.push(s);
  const parent = current;
  current = s;
  try {
    body();
  } finally {
    current = parent;
  }
}
describe.skip = (_name: string, _body: () => void): void => undefined;
function it(name: string, fn?: Fn): void {
  current.tests.push({ name, fn });
}
it.skip = (name: string, _fn?: Fn): void => {
  current.tests.push({ name, fn: undefined });
};
g.describe = describe;
g.it = it;
g.before = (fn: Fn) => current.before.push(fn);
g.after = (fn: Fn) => current.after.push(fn);
g.beforeEach = (fn: Fn) => current.beforeEach.push(fn);
g.afterEach = (fn: Fn) => current.afterEach.push(fn);

let passed = 0;
let failed = 0;
let skipped = 0;

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? "\n" + e.stack : ""}`;
  return String(e);
}

async function runSuite(s: Suite, path: string[], eachBefore: Fn[], eachAfter: Fn[]): Promise<void> {
  const here = s.name ? [...path, s.name] : path;
  const be = [...eachBefore, ...s.beforeEach];
  const ae = [...s.afterEach, ...eachAfter];
  for (const h of s.before) await h();
  for (const t of s.tests) {
    const title = [...here, t.name].join(" › ");
    if (!t.fn) {
      skipped++;
      continue;
    }
    try {
      for (const h of be) await h();
      await t.fn();
      for (const h of ae) await h();
      passed++;
    } catch (e) {
      failed++;
      print(`FAIL ${title}\n  ${describeError(e)}`);
    }
  }
  for (const child of s.suites) await runSuite(child, here, be, ae);
  for (const h of s.after) await h();
}

/** Runs every registered test; called by the bundle's entry after all test modules have loaded. */
export async function runAll(): Promise<void> {
  try {
    await runSuite(root, [], [], []);
  } catch (e) {
    failed++;
    print(`FAIL (hook) ${describeError(e)}`);
  }
  print(`xs: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
}
