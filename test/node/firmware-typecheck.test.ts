/**
 * CI cannot install the Moddable SDK, so it checks the firmware sources the SDK would compile:
 * hosts/moddable and modules/ type-check against @moddable/typings plus our own .d.ts files, and
 * manifest.json names every module it must (a core module left out of `preload` would fail only on a device).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { existsSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { RETAINED_AREA_BYTES } from "../../src/broker-local/retained-flash.js";

const root = new URL("../../", import.meta.url).pathname;

interface Manifest {
  modules: Record<string, string>;
  preload: string[];
  typescript: { tsconfig: { compilerOptions: Record<string, unknown> } };
  platforms: Record<string, { modules?: Record<string, string>; preload?: string[]; error?: string; build?: Record<string, string>; creation?: unknown }>;
}

/** The firmware's own manifests (the lin contract app is a test build and may carry test modules). */
const FIRMWARE_MANIFESTS = ["manifest.json"];
const ALL_MANIFESTS = [...FIRMWARE_MANIFESTS, "hosts/moddable/port-contracts/manifest.json"];

/** Every `modules` entry of a manifest, top level and per platform, as [specifier, path relative to root]. */
function moduleEntries(manifestPath: string): Array<[string, string]> {
  const m = JSON.parse(readFileSync(join(root, manifestPath), "utf8")) as Manifest;
  const base = dirname(manifestPath);
  const maps = [m.modules ?? {}, ...Object.values(m.platforms ?? {}).map((p) => p.modules ?? {})];
  return maps.flatMap((map) => Object.entries(map).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v): [string, string] => [name, String(v)])))
    .filter(([, v]) => !v.startsWith("$(")) // SDK modules: checked by mcconfig where the SDK is
    .map(([name, v]) => [name, normalize(join(base, v))]);
}

/** Where a module path resolves, as mcconfig would look for it (source .ts or .js), or undefined. */
function moduleFile(path: string): string | undefined {
  return [".ts", ".js"].map((ext) => path + ext).find((f) => existsSync(join(root, f)));
}

/**
 * Specifiers a TypeScript/JavaScript file imports or re-exports (static forms only: the core has no dynamic
 * import). Type-only imports count: a module of types (src/ports.ts) is reached that way.
 */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\sfrom\s+)?"([^"]+)"/g)].map((m) => m[1]!);
}

/** Specifiers a file imports at run time (`import type` loads nothing and is left out). */
function importsOfValues(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/(?:^|[;\s])(?:import|export)\s+(type\s+)?(?:[^"';]*?\sfrom\s+)?"([^"]+)"/g)].filter((m) => m[1] === undefined).map((m) => m[2]!);
}

/**
 * The files the firmware reaches through imports from its roots (main, and the `setup/*` modules the SDK
 * runs before main), resolving manifest specifiers and relative paths.
 */
function reachableFromMain(map: Record<string, string>): Set<string> {
  const seen = new Set<string>();
  const roots = Object.entries(map).filter(([name]) => name === "main" || name.startsWith("setup/")).map(([, path]) => moduleFile(path));
  const stack = roots.filter((f): f is string => f !== undefined);
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of importsOf(file)) {
      const target = spec.startsWith(".") ? moduleFile(normalize(join(dirname(file), spec.replace(/\.js$/, "")))) : map[spec] !== undefined ? moduleFile(map[spec]!) : undefined;
      if (target !== undefined && !target.endsWith(".js")) stack.push(target);
    }
  }
  return seen;
}

/** True when the module only re-exports (`export ... from`): a facade that adds no code of its own. */
function onlyReExports(file: string): boolean {
  const code = readFileSync(join(root, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "").trim();
  return code.split(";").map((s) => s.trim()).filter(Boolean).every((s) => /^export\s[\s\S]*\sfrom\s+"[^"]+"$/.test(s));
}

function tsFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return tsFiles(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

describe("firmware: sources for the Moddable build", function () {
  this.timeout(120000);
  const manifest = JSON.parse(readFileSync(join(root, "manifest.json"), "utf8")) as Manifest;

  it("hosts/moddable and modules type-check against @moddable/typings and our .d.ts (tsc -p hosts/moddable)", () => {
    try {
      execFileSync("npx", ["tsc", "-p", "hosts/moddable/tsconfig.json"], { cwd: root, encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      const error = e as { stdout?: string; stderr?: string };
      assert.fail(`tsc -p hosts/moddable/tsconfig.json failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`);
    }
  });

  it("lists every core module under src/ by name (portcullis/<path>) in modules and preload", () => {
    for (const file of tsFiles("src")) {
      const name = `portcullis/${relative("src", file).slice(0, -3)}`;
      assert.equal(manifest.modules[name], `./${file.slice(0, -3)}`, `${name} missing from manifest.json modules`);
      assert.ok(manifest.preload.includes(name), `${name} missing from manifest.json preload`);
    }
  });

  it("names only modules whose file exists (the SDK would fail the build on a device, not in CI)", () => {
    const missing = ALL_MANIFESTS.flatMap((mf) => moduleEntries(mf).filter(([, path]) => moduleFile(path) === undefined).map(([name, path]) => `${mf}: ${name} -> ${path}`));
    assert.deepEqual(missing, [], `manifest entries without a .ts or .js file:\n${missing.join("\n")}`);
    for (const mf of ALL_MANIFESTS) {
      const m = JSON.parse(readFileSync(join(root, mf), "utf8")) as { include?: string[] };
      for (const inc of m.include ?? []) {
        if (!inc.startsWith("$(")) assert.ok(existsSync(join(root, dirname(mf), inc)), `${mf} includes ${inc}, which does not exist`);
      }
    }
  });

  it("preloads no test helper: each preload entry is a listed module the firmware's main reaches (or a pure re-export facade), none under test/", () => {
    const entries = FIRMWARE_MANIFESTS.flatMap(moduleEntries);
    const map = Object.fromEntries(entries);
    const reachable = reachableFromMain(map);
    const preloads = [...manifest.preload, ...Object.values(manifest.platforms).flatMap((p) => p.preload ?? [])];
    const sdk = new Set(Object.entries({ ...manifest.modules, ...Object.assign({}, ...Object.values(manifest.platforms).map((p) => p.modules ?? {})) }).filter(([, v]) => String(v).startsWith("$(")).map(([k]) => k));
    const wrong: string[] = [];
    for (const name of preloads) {
      if (sdk.has(name)) continue;
      const path = map[name];
      if (path === undefined) {
        wrong.push(`${name}: preloaded but not in modules`);
        continue;
      }
      const file = moduleFile(path);
      if (file === undefined) continue; // reported by the existence test
      if (/^test\//.test(file) || /(^|\/)(fixtures?|test-?\w*|faulty[\w-]*|fake[\w-]*|mock[\w-]*)(\.|\/)/.test(file)) wrong.push(`${name}: ${file} is a test helper`);
      else if (file.endsWith(".ts") && !reachable.has(file) && !onlyReExports(file)) wrong.push(`${name}: ${file} is not imported by the firmware (a test helper or dead code)`);
    }
    assert.deepEqual(wrong, []);
  });

  it("maps every portcullis/ and test/ module the firmware and the port contract app import, as XS resolves names", () => {
    // XS resolves a relative import against the importing module's name (portcullis/outbound/flash-queue
    // + ../audit/store = portcullis/audit/store), so each such name must be in that app's manifest.
    const problems: string[] = [];
    for (const mf of ["manifest.json", "hosts/moddable/port-contracts/manifest.json"]) {
      // Our own included manifests (modules/*/manifest.json) map native modules (portcullis/memory, …).
      const includes = ((JSON.parse(readFileSync(join(root, mf), "utf8")) as { include?: string[] }).include ?? []).filter((i) => !i.startsWith("$(")).map((i) => normalize(join(dirname(mf), i)));
      const map = Object.fromEntries([...includes.flatMap(moduleEntries), ...moduleEntries(mf)]);
      const seen = new Set<string>();
      const stack = ["main"];
      while (stack.length > 0) {
        const name = stack.pop()!;
        if (seen.has(name)) continue;
        seen.add(name);
        const file = moduleFile(map[name]!);
        if (file === undefined || file.endsWith(".js")) continue;
        for (const spec of importsOfValues(file)) {
          const target = spec.startsWith(".") ? join(dirname(name), spec.replace(/\.js$/, "")) : spec;
          if (map[target] !== undefined) stack.push(target);
          else if (/^(portcullis|test|src)\//.test(target)) problems.push(`${mf}: ${name} imports ${target}, which the manifest does not map`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it("lists every host module, with the flash and key store mapped per platform", () => {
    const common = tsFiles("hosts/moddable").filter((f) => !/\/(esp32|lin)\//.test(f) && !f.endsWith("/main.ts"));
    for (const file of common) {
      const name = `portcullis/moddable/${relative("hosts/moddable", file).slice(0, -3)}`;
      assert.equal(manifest.modules[name], `./${file.slice(0, -3)}`, `${name} missing from manifest.json modules`);
      assert.ok(manifest.preload.includes(name), `${name} missing from preload`);
    }
    assert.equal(manifest.modules["main"], "./hosts/moddable/main");
    for (const platform of ["esp32", "lin"]) {
      for (const port of ["flash", "keystore"]) {
        assert.equal(manifest.platforms[platform]?.modules?.[`portcullis/moddable/${port}`], `./hosts/moddable/${platform}/${port}`);
      }
    }
  });

  it("builds only for esp32 and lin, with a fixed heap, strict TypeScript and noEmitOnError", () => {
    assert.match(manifest.platforms["..."]?.error ?? "", /esp32.*lin/);
    for (const platform of ["esp32", "lin"]) {
      const creation = manifest.platforms[platform]?.creation as { chunk: { incremental: number }; heap: { initial: number; incremental: number } };
      assert.equal(creation.chunk.incremental, 0, `${platform}: chunk heap must not grow`);
      assert.equal(creation.heap.incremental, 0, `${platform}: slot heap must not grow`);
    }
    const options = manifest.typescript.tsconfig.compilerOptions;
    assert.equal(options["noEmitOnError"], true);
    assert.equal(options["strict"], true);
  });

  it("declares an audit partition holding the core's flash region (with the retained area) plus a scratch sector, aligned, within 4 MB", () => {
    const csv = readFileSync(join(root, "hosts/moddable/esp32/partitions.csv"), "utf8");
    const rows = csv.split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((l) => l.split(",").map((c) => c.trim()));
    const audit = rows.find((r) => r[0] === "audit");
    assert.ok(audit, "audit partition missing");
    const [offset, size] = [Number(audit[3]), Number(audit[4])];
    assert.equal(size, FLASH_BYTES_NEEDED + RETAINED_AREA_BYTES + 4096, "the core's region (audit log + queue slots + retained area) and the self-test sector");
    assert.equal(offset % 4096, 0);
    assert.ok(offset + size <= 4 * 1024 * 1024);
    let end = 0;
    for (const r of rows) {
      assert.ok(Number(r[3]) >= end, `${r[0]} overlaps the partition before it`);
      end = Number(r[3]) + Number(r[4]);
    }
  });
});
