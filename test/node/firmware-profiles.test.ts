/**
 * Board profiles in the firmware build: each of esp32 and esp32-psram has its own XS creation values in
 * manifest.json (the ESP32 platform section that builds it, and the lin section the load run builds it
 * with), they equal src/profiles.ts `heap`, and the build tells the firmware which profile it is
 * (config.portcullis.profile, read by hosts/moddable/config.ts).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PROFILES, profileByName, type BoardProfile } from "../../src/profiles.js";

const root = new URL("../../", import.meta.url).pathname;

interface Creation {
  static: number;
  chunk: { initial: number; incremental: number };
  heap: { initial: number; incremental: number };
  stack: number;
}
interface Section {
  include?: string[];
  modules?: Record<string, string>;
  preload?: string[];
  build?: Record<string, string>;
  config?: { portcullis?: Record<string, unknown> };
  creation?: Creation;
}

const manifest = JSON.parse(readFileSync(join(root, "manifest.json"), "utf8")) as { platforms: Record<string, Section> };

/** The platform sections that build each firmware profile: [ESP32 section, lin section]. */
const SECTIONS: Record<"esp32" | "esp32-psram", [string, string]> = {
  esp32: ["esp32", "lin"],
  "esp32-psram": ["esp32/esp32s3", "lin/esp32-psram"],
};

function assertCreation(where: string, creation: Creation | undefined, profile: BoardProfile): void {
  assert.ok(creation, `${where}: no creation values`);
  assert.ok(profile.heap, `${profile.name}: src/profiles.ts has no heap`);
  assert.equal(creation.heap.initial, profile.heap.slots, `${where}: slot count differs from src/profiles.ts ${profile.name}.heap.slots`);
  assert.equal(creation.chunk.initial, profile.heap.chunk, `${where}: chunk bytes differ from src/profiles.ts ${profile.name}.heap.chunk`);
  assert.equal(creation.stack, profile.heap.stack, `${where}: stack differs from src/profiles.ts ${profile.name}.heap.stack`);
  assert.equal(creation.heap.incremental, 0, `${where}: the slot heap must not grow`);
  assert.equal(creation.chunk.incremental, 0, `${where}: the chunk heap must not grow`);
}

describe("firmware: board profiles in manifest.json", () => {
  for (const [name, [device, lin]] of Object.entries(SECTIONS)) {
    const profile = profileByName(name);
    it(`${name}: ${device} and ${lin} carry the profile's creation values and name`, () => {
      for (const section of [device, lin]) {
        assertCreation(section, manifest.platforms[section]?.creation, profile);
        assert.equal(manifest.platforms[section]?.config?.portcullis?.["profile"], name, `${section}: config.portcullis.profile`);
      }
    });
  }

  it("the two profiles differ in their heaps (a profile is not a copy of the other)", () => {
    const a = PROFILES.esp32.heap!;
    const b = PROFILES["esp32-psram"].heap!;
    assert.ok(b.slots > a.slots && b.chunk > a.chunk, "the PSRAM board gets the larger heaps");
  });

  it("esp32/esp32s3 is the esp32 section with PSRAM: same includes, modules, preload and config apart from the profile", () => {
    const plain = structuredClone(manifest.platforms["esp32"]!);
    const psram = structuredClone(manifest.platforms["esp32/esp32s3"]!);
    for (const s of [plain, psram]) {
      delete s.creation;
      delete s.config!.portcullis!["profile"];
      delete s.build!["SDKCONFIGPATH"];
    }
    assert.deepEqual(psram, plain);
    assert.equal(manifest.platforms["esp32/esp32s3"]!.build!["SDKCONFIGPATH"], "./hosts/moddable/esp32-psram/sdkconfig");
  });

  it("the esp32-psram sdkconfig keeps every esp32 setting and turns PSRAM on for malloc", () => {
    const lines = (f: string) => readFileSync(join(root, f), "utf8").split("\n").filter((l) => l.startsWith("CONFIG_"));
    const plain = lines("hosts/moddable/esp32/sdkconfig/sdkconfig.defaults");
    const psram = lines("hosts/moddable/esp32-psram/sdkconfig/sdkconfig.defaults");
    for (const l of plain) assert.ok(psram.includes(l), `esp32-psram sdkconfig lacks ${l}`);
    for (const l of ["CONFIG_SPIRAM=y", "CONFIG_SPIRAM_USE_MALLOC=y"]) assert.ok(psram.includes(l), `esp32-psram sdkconfig lacks ${l}`);
    assert.deepEqual(lines("hosts/moddable/esp32-psram/sdkconfig/sdkconfig.defaults.release"), lines("hosts/moddable/esp32/sdkconfig/sdkconfig.defaults.release"));
  });

  it("the Node board has no fixed heap", () => {
    assert.equal(PROFILES.node.heap, undefined);
  });
});
