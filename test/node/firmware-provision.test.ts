/**
 * tools/provision.ts against the firmware's reader (hosts/moddable/provisioning.ts): what the tool
 * writes, the firmware reads back, through the lin key-file format and the ESP-IDF NVS CSV.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyStore } from "../../src/ports.js";
import { nvsCsv, provisionEntries, writeLinKeys, type Entries } from "../../tools/provision.js";
import { readProvisioning } from "../../hosts/moddable/provisioning.js";

function store(entries: Entries): KeyStore {
  return { get: (n) => entries.get(n)?.slice(), set: () => assert.fail("read only"), delete: () => assert.fail("read only") };
}

const token = "q7H0kF9yY2c3WZ1nV4sXb8Lr0TmPaEu5dJxKcN6oQwA";
const big = JSON.stringify({ id: "vendor.example", fields: Array.from({ length: 400 }, (_, i) => ({ name: `f${i}`, keep: i % 2 === 0 })) });

describe("firmware: provisioning (tools/provision.ts → hosts/moddable/provisioning.ts)", () => {
  it("round-trips Wi-Fi, the owner token hash and multi-chunk integrations (ü and emoji intact)", () => {
    const small = JSON.stringify({ id: "thermo", note: "Grüße 🔒" });
    const entries = provisionEntries({ ssid: "home", password: "correct horse", ownerToken: token, integrations: [small, big] });
    assert.deepEqual(new TextDecoder().decode(entries.get("wifi.ssid")), "home");
    const read = readProvisioning(store(entries));
    assert.deepEqual(read.integrations.map((t) => JSON.parse(t)), [JSON.parse(small), JSON.parse(big)]);
    assert.deepEqual(Buffer.from(read.ownerTokenHash!), createHash("sha256").update(token).digest());
    assert.ok((entries.get("int.01")?.[0] ?? 0) > 1, "the large contract was chunked");
    for (const [name, value] of entries) {
      assert.match(name, /^[a-z0-9._-]{1,15}$/);
      assert.ok(value.length <= 4000);
    }
  });

  it("refuses bad input instead of writing a board that cannot start", () => {
    const ok = { ssid: "home", password: "correct horse", ownerToken: token, integrations: [] };
    assert.throws(() => provisionEntries({ ...ok, ssid: "" }), /SSID/);
    assert.throws(() => provisionEntries({ ...ok, password: "short" }), /8-63/);
    assert.throws(() => provisionEntries({ ...ok, ownerToken: "abc" }), /token/);
    assert.throws(() => provisionEntries({ ...ok, integrations: ["{not json"] }), /not JSON/);
    assert.throws(() => provisionEntries({ ...ok, integrations: Array(6).fill(big) }), /NVS entries/);
  });

  it("the reader refuses a store with a missing chunk", () => {
    const entries = provisionEntries({ ssid: "home", password: "", ownerToken: token, integrations: [big] });
    entries.delete("int.00.1");
    assert.throws(() => readProvisioning(store(entries)), /int\.00\.1 missing/);
  });

  it("writes lin key files and an NVS CSV for nvs_partition_gen.py with the same bytes", () => {
    const entries = provisionEntries({ ssid: "home", password: "correct horse", ownerToken: token, integrations: [big] });
    const dir = mkdtempSync(join(tmpdir(), "provision-"));
    writeLinKeys(entries, dir);
    assert.deepEqual(readdirSync(dir).sort(), [...entries.keys()].sort());
    for (const [name, value] of entries) assert.deepEqual(new Uint8Array(readFileSync(join(dir, name))), value);
    const rows = nvsCsv(entries).trim().split("\n");
    assert.equal(rows[0], "key,type,encoding,value");
    assert.equal(rows[1], "portcullis,namespace,,");
    const parsed = new Map(rows.slice(2).map((r) => {
      const [name, type, encoding, hex] = r.split(",");
      assert.equal(type, "data");
      assert.equal(encoding, "hex2bin");
      return [name!, new Uint8Array(Buffer.from(hex!, "hex"))];
    }));
    assert.deepEqual(parsed, entries);
  });
});
