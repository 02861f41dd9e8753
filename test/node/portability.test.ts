/** The core must run unchanged in XS: nothing under src/ may reach for a platform. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const SRC = path.resolve("src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Strips comments and string contents that are not import specifiers, crudely but safely for our code. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

// A global is a bare identifier: not a member (`x.console`) and not a property name (`console: Console`).
const FORBIDDEN_GLOBALS = /(?<![.\w$#])(process|Buffer|require|setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|trace|console|__dirname|__filename|window|document|fetch|globalThis)\b(?!\s*\??:)/;

export function violations(name: string, text: string): string[] {
  const out: string[] = [];
  const body = code(text);
  for (const m of body.matchAll(/\b(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|\bimport\s+["']([^"']+)["']/g)) {
    const spec = m[1] ?? m[2] ?? m[3] ?? "";
    if (!spec.startsWith(".")) out.push(`${name}: imports "${spec}" (the core imports only src/)`);
    else if (!spec.endsWith(".js")) out.push(`${name}: import "${spec}" must name the file with .js (XS resolves it literally)`);
    else if (!path.resolve(path.dirname(name), spec).startsWith(SRC)) out.push(`${name}: import "${spec}" leaves src/`);
  }
  const noStrings = body.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
  noStrings.split("\n").forEach((line, i) => {
    const g = FORBIDDEN_GLOBALS.exec(line);
    if (g) out.push(`${name}:${i + 1}: touches platform global "${g[1]}"`);
  });
  for (const m of noStrings.matchAll(/\b(toSorted|toReversed|toSpliced|groupBy|withResolvers|fromAsync)\b/g)) {
    out.push(`${name}: uses ${m[1]} (not in XS 13.3 / ES2022)`);
  }
  if (/^\s*(export\s+)?(const\s+)?enum\s/m.test(noStrings)) out.push(`${name}: TS enum (not erasable; use a frozen object)`);
  return out.concat(privateMethods(name, noStrings));
}

/**
 * Instance private methods and accessors (`#m() {}`, `get #x()`): XS installs each one in every instance
 * as a private field (the spec's PrivateMethodOrAccessorAdd), one heap slot per method per object, where
 * a `private` method lives once on the prototype, in flash (DESIGN.md "Where the slots go"). Static
 * private methods are per class and allowed.
 */
export function privateMethods(name: string, text: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    const m = /^\s+(?!static\b)(?:async\s+)?(?:\*\s*)?(?:get\s+|set\s+)?#([A-Za-z_$][\w$]*)\s*\(/.exec(line);
    if (m) out.push(`${name}:${i + 1}: instance private method #${m[1]} (a slot in every instance on XS; make it a \`private\` method)`);
  });
  return out;
}

/** The firmware's own modules: the same rule for private methods (they import Moddable modules, so not the rest). */
const FIRMWARE = path.resolve("hosts/moddable");

describe("portability of src/", () => {
  it("imports only src/ with .js paths and touches no platform global", () => {
    const all = files(SRC).flatMap((f) => violations(f, readFileSync(f, "utf8")));
    assert.deepEqual(all, []);
  });

  it("the firmware's modules (hosts/moddable) declare no instance private method either", () => {
    const all = files(FIRMWARE).flatMap((f) => privateMethods(f, code(readFileSync(f, "utf8"))));
    assert.deepEqual(all, []);
  });

  it("the checker itself catches what it must", () => {
    const f = path.join(SRC, "x.ts");
    assert.equal(violations(f, `import fs from "node:fs";`).length, 1);
    assert.equal(violations(f, `import x from "embedded:io/socket/tcp";`).length, 1);
    assert.equal(violations(f, `import Timer from "timer";`).length, 1);
    assert.equal(violations(f, `import { a } from "./a";`).length, 1);
    assert.equal(violations(f, `import { a } from "../../hosts/node/a.js";`).length, 1);
    assert.equal(violations(f, `const b = Buffer.from("x");`).length, 1);
    assert.equal(violations(f, `setTimeout(() => 0, 1);`).length, 1);
    assert.equal(violations(f, `trace("x");`).length, 1);
    assert.equal(violations(f, `const y = process.env.X;`).length, 1);
    assert.equal(violations(f, `const z = [1].toSorted();`).length, 1);
    assert.equal(violations(f, `enum E { A }`).length, 1);
    assert.equal(violations(f, `globalThis.crypto.getRandomValues(b);`).length, 1);
    assert.equal(violations(f, `class A {\n  #run(): void {}\n}`).length, 1);
    assert.equal(violations(f, `class A {\n  async #run(): Promise<void> {}\n  get #x(): number { return 1; }\n}`).length, 2);
    assert.deepEqual(violations(f, `class A {\n  #n = 0;\n  static #make(): A { return new A(); }\n  private _run(): void { this.#n++; }\n}`), []);
    assert.deepEqual(violations(f, `import { a } from "./a.js"; // process.env is not used\nconst s = "console";\ninterface B { readonly console: C }\nthis.board.console.write(s);`), []);
  });
});
