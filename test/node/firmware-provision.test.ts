/**
 * tools/provision.ts against the firmware's reader (hosts/moddable/provisioning.ts): what the tool
 * writes, the firmware reads back, through the lin key-file format and the ESP-IDF NVS CSV; and the
 * firmware's ContractStore on the KeyStore.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KeyStore } from "../../src/ports.js";
import { parseGatewayConfig } from "../../src/config.js";
import { newOwnerToken, nvsCsv, provisionEntries, readConfigDir, writeLinKeys, type Entries } from "../../tools/provision.js";
import { keyStoreContracts, readChunked, readProvisioning, writeChunked } from "../../hosts/moddable/provisioning.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

class MapStore implements KeyStore {
  readonly map: Entries;
  constructor(map: Entries = new Map()) {
    this.map = map;
  }
  get(name: string) {
    return this.map.get(name)?.slice();
  }
  set(name: string, value: Uint8Array) {
    assert.match(name, /^[a-z0-9._-]{1,15}$/);
    assert.ok(value.length <= 4000);
    this.map.set(name, value.slice());
  }
  delete(name: string) {
    this.map.delete(name);
  }
}

const home = readConfigDir("examples/home");
const token = newOwnerToken();
const input = { ssid: "home", password: "correct horse", ownerToken: token, ...home };

describe("firmware: provisioning (tools/provision.ts → hosts/moddable/provisioning.ts)", () => {
  it("round-trips the example home: the core parses what the firmware reads back", () => {
    const entries = provisionEntries(input);
    const read = readProvisioning(new MapStore(entries));
    assert.deepEqual(JSON.parse(read.configText!), JSON.parse(home.configText));
    assert.deepEqual(read.contracts.map((c) => JSON.parse(c.text)), home.contracts.map((c) => JSON.parse(c.text)));
    assert.ok(parseGatewayConfig(read.configText!, read.contracts).ok);
    assert.deepEqual(Buffer.from(entries.get("owner-token")!), createHash("sha256").update(token).digest(), "stored as the core's owner-token hash");
    for (const [name, value] of entries) {
      assert.match(name, /^[a-z0-9._-]{1,15}$/);
      assert.ok(value.length <= 4000);
    }
  });

  it("refuses input the board could not start with", () => {
    assert.throws(() => provisionEntries({ ...input, ssid: "" }), /SSID/);
    assert.throws(() => provisionEntries({ ...input, password: "short" }), /8-63/);
    assert.throws(() => provisionEntries({ ...input, ownerToken: "abc" }), /owner token/);
    assert.throws(() => provisionEntries({ ...input, configText: "{}" }), /config rejected/);
    assert.throws(() => provisionEntries({ ...input, contracts: [{ source: "bad.json", text: "{not json" }] }), /config rejected|JSON/);
  });

  it("chunks long texts, keeps UTF-8 intact across chunk edges, and refuses a missing chunk", () => {
    const store = new MapStore();
    const text = "é".repeat(2500) + "🔒".repeat(500); // 7000 bytes: two chunks, split inside a sequence
    writeChunked(store, "cfg", text);
    assert.equal(store.get("cfg")![0], 2);
    assert.equal(readChunked(store, "cfg"), text);
    writeChunked(store, "cfg", "short");
    assert.equal(store.get("cfg.1"), undefined, "stale chunks are removed");
    assert.equal(readChunked(store, "cfg"), "short");
    writeChunked(store, "int.00", text);
    store.delete("int.00.1");
    assert.throws(() => readChunked(store, "int.00"), /int\.00\.1 missing/);
  });

  it("keeps approved contracts for the core under short hashed keys", () => {
    const store = new MapStore();
    const contracts = keyStoreContracts(store, nobleCrypto(seededRandom()));
    assert.equal(contracts.get("thermo-cloud"), undefined);
    contracts.set("thermo-cloud", home.contracts[0]!.text);
    assert.equal(contracts.get("thermo-cloud"), home.contracts[0]!.text);
    assert.ok([...store.map.keys()].every((k) => /^ap\.[0-9a-f]{8}(\.\d)?$/.test(k)));
  });

  it("writes lin key files and an NVS CSV for nvs_partition_gen.py with the same bytes", () => {
    const entries = provisionEntries(input);
    const dir = mkdtempSync(join(tmpdir(), "provision-"));
    writeLinKeys(entries, dir);
    assert.deepEqual(readdirSync(dir).sort(), [...entries.keys()].sort());
    for (const [name, value] of entries) assert.deepEqual(new Uint8Array(readFileSync(join(dir, name))), value);
    const rows = nvsCsv(entries).trim().split("\n");
    assert.equal(rows[0], "key,type,encoding,value");
    assert.equal(rows[1], "portcullis,namespace,,");
    const parsed = new Map(
      rows.slice(2).map((r) => {
        const [name, type, encoding, hex] = r.split(",");
        assert.equal(type, "data");
        assert.equal(encoding, "hex2bin");
        return [name!, new Uint8Array(Buffer.from(hex!, "hex"))];
      }),
    );
    assert.deepEqual(parsed, entries);
  });
});
