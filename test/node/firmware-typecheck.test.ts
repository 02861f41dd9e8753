/**
 * CI cannot install the Moddable SDK, so it checks the firmware sources the SDK would compile:
 * hosts/moddable and modules/ type-check against @moddable/typings plus our own .d.ts files, and
 * manifest.json names every module it must (a core module left out of `preload` would fail only on a device).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";

const root = new URL("../../", import.meta.url).pathname;

interface Manifest {
  modules: Record<string, string>;
  preload: string[];
  typescript: { tsconfig: { compilerOptions: Record<string, unknown> } };
  platforms: Record<string, { modules?: Record<string, string>; preload?: string[]; error?: string; build?: Record<string, string>; creation?: unknown }>;
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

  it("declares an audit partition holding the core's flash region plus a scratch sector, aligned, within 4 MB", () => {
    const csv = readFileSync(join(root, "hosts/moddable/esp32/partitions.csv"), "utf8");
    const rows = csv.split("\n").filter((l) => l.trim() && !l.startsWith("#")).map((l) => l.split(",").map((c) => c.trim()));
    const audit = rows.find((r) => r[0] === "audit");
    assert.ok(audit, "audit partition missing");
    const [offset, size] = [Number(audit[3]), Number(audit[4])];
    assert.equal(size, FLASH_BYTES_NEEDED + 4096, "the core's region (audit log + queue slots) and the self-test sector");
    assert.equal(offset % 4096, 0);
    assert.ok(offset + size <= 4 * 1024 * 1024);
    let end = 0;
    for (const r of rows) {
      assert.ok(Number(r[3]) >= end, `${r[0]} overlaps the partition before it`);
      end = Number(r[3]) + Number(r[4]);
    }
  });
});
