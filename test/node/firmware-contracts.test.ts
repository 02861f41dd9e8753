/**
 * CI has no Moddable SDK, so it checks that the lin port contract app (hosts/moddable/port-contracts,
 * run by `npm run firmware:lin -- --contracts`) would load every suite: each test/contract/*.contract.ts
 * is mapped and instantiated, and every import of a suite resolves — as XS resolves it, relative to the
 * importing module's name — to a module the manifest maps.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, normalize } from "node:path";

const root = new URL("../../", import.meta.url).pathname;
const appDir = "hosts/moddable/port-contracts";
const manifest = JSON.parse(readFileSync(join(root, appDir, "manifest.json"), "utf8")) as { include: string[]; modules: Record<string, string> };
/** Modules our own included manifests (modules/*) provide: native-backed, not traversed. */
const included = new Set(
  manifest.include
    .filter((i) => !i.startsWith("$("))
    .flatMap((i) => {
      // A module's manifest may map its modules at the top or per platform (modules/lin-socket: lin only).
      const m = JSON.parse(readFileSync(join(root, appDir, i), "utf8")) as { modules?: Record<string, unknown>; platforms?: Record<string, { modules?: Record<string, unknown> }> };
      return [m.modules, ...Object.values(m.platforms ?? {}).map((p) => p.modules)].flatMap((mods) => Object.keys(mods ?? {}));
    }),
);
const main = readFileSync(join(root, appDir, "main.ts"), "utf8");

/** The repository path (no extension) a manifest entry points at. */
function source(name: string): string | undefined {
  const path = manifest.modules[name];
  return path === undefined ? undefined : normalize(join(appDir, path));
}

/** XS's rule (xs/platforms/mc/xsHosts.c fxFindModule): "./" and "../" are taken from the referrer's name; ".js" is dropped. */
function resolveLikeXs(referrer: string, specifier: string): string {
  const bare = specifier.replace(/\.m?js$/, "");
  if (!bare.startsWith("./") && !bare.startsWith("../")) return bare;
  return normalize(join(referrer, "..", bare));
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  // Type-only imports are erased by tsc and need no module at run time.
  return [...text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"/gm)].map((m) => (m[1] ?? m[2])!);
}

const suites = readdirSync(join(root, "test/contract")).filter((f) => f.endsWith(".contract.ts"));

describe("firmware: the lin port contract app (hosts/moddable/port-contracts)", () => {
  it("maps every contract suite under its repository path and runs each exported suite in main.ts", () => {
    assert.ok(suites.length >= 3);
    for (const file of suites) {
      const name = `test/contract/${file.slice(0, -".contract.ts".length)}`;
      assert.equal(source(name), `test/contract/${file.slice(0, -3)}`, `${name} missing from ${appDir}/manifest.json`);
      assert.match(main, new RegExp(`from "${name}"`), `main.ts does not import ${name}`);
      const text = readFileSync(join(root, "test/contract", file), "utf8");
      for (const [, fn] of text.matchAll(/^export function (\w+Contract)\(/gm)) {
        assert.match(main, new RegExp(`^${fn}\\(`, "m"), `main.ts does not run ${fn}`);
      }
    }
  });

  it("resolves every run-time import of main.ts, the suites and the harness, and theirs, to a mapped module", () => {
    const pending = suites.map((f) => `test/contract/${f.slice(0, -".contract.ts".length)}`);
    pending.push("test/xs/harness");
    // main.ts's own imports too: the board modules it builds (portcullis/moddable/*) import the core.
    for (const specifier of imports(`${appDir}/main.ts`)) pending.push(resolveLikeXs("main", specifier));
    const seen = new Set<string>();
    while (pending.length > 0) {
      const name = pending.pop()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const file = source(name);
      // The SDK's modules (file, mc/config, crypt, embedded:…) come with the manifest's includes.
      if (file === undefined && (included.has(name) || !/^(portcullis|test|src)\//.test(name))) continue;
      assert.ok(file !== undefined, `${name} is imported but not mapped in ${appDir}/manifest.json`);
      if (file.startsWith(appDir)) continue; // our own re-exports (assert.js, bytes.js)
      const path = existsSync(join(root, `${file}.ts`)) ? `${file}.ts` : `${file}.js`;
      for (const specifier of imports(path)) pending.push(resolveLikeXs(name, specifier));
    }
    assert.equal(source("node:assert/strict"), `${appDir}/assert`, "node:assert/strict must be the XS shim");
    assert.equal(source("test/xs/assert"), "test/xs/assert");
    assert.equal(source("portcullis/util/bytes"), "src/util/bytes", "bytes.js re-exports the core module");
  });
});
