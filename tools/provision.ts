/**
 * `tsx tools/provision.ts`: writes a board's provisioning data in the form the firmware's KeyStore reads
 * (SPEC.md "Firmware" §Provisioning): Wi-Fi credentials, the owner token's hash, the gateway config
 * and contracts (validated with the core's own parser first), an optional uplink trust anchor.
 *
 *   --ssid NAME --password-file FILE      Wi-Fi (the password is read from a file, never from argv)
 *   --config DIR                          gateway.json and contracts/*.json, as for `npm start -- --config`
 *   --uplink-ca FILE.der                  extra trust anchor for vendor brokers (DER)
 *   --owner-token-file FILE               use this token instead of generating one
 *   --nvs-csv OUT.csv                     ESP32: CSV for ESP-IDF's nvs_partition_gen.py (namespace "portcullis")
 *   --lin-dir DIR                         lin build: one file per key, as hosts/moddable/lin/keystore.ts stores them
 *   --owner-token-out FILE                where a generated token goes (default: owner.token beside the
 *                                         output: in the --nvs-csv file's folder, or in the folder that
 *                                         holds --lin-dir, as the lin data folder does)
 *
 * A generated token is written first (mode 600, never over an existing file, never to the current
 * directory unless the output is there, never to the terminal); the board keeps only its SHA-256.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { parseGatewayConfig } from "../src/config.js";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

/** KeyStore rules (src/ports.ts, hosts/moddable/keystore-rules.ts). */
const NAME = /^[a-z0-9._-]{1,15}$/;
const MAX_VALUE = 4000;
/** The NVS partition in hosts/moddable/esp32/partitions.csv. */
const NVS_BYTES = 0x6000;
/** NVS: 4096-byte pages of 126 32-byte entries after the header and bitmap; one page is kept free for GC. */
const NVS_ENTRIES = (NVS_BYTES / 4096 - 1) * 126;
/** Contracts at most (keys int.00 … int.31). */
const MAX_INTEGRATIONS = 32;

export type Entries = Map<string, Uint8Array>;

function put(entries: Entries, name: string, value: Uint8Array): void {
  if (!NAME.test(name)) throw new RangeError(`key name ${name} breaks the KeyStore rules`);
  if (value.length > MAX_VALUE) throw new RangeError(`${name} is ${value.length} bytes; at most ${MAX_VALUE}`);
  entries.set(name, value);
}

export interface ProvisionInput {
  readonly ssid: string;
  readonly password: string;
  /** The owner's bearer token (`pct_…`); only its SHA-256 is stored, under the core's key `owner-token`. */
  readonly ownerToken: string;
  /** gateway.json text, validated with the core's parser before anything is written. */
  readonly configText: string;
  readonly contracts: readonly { readonly source: string; readonly text: string }[];
  readonly uplinkCa?: Uint8Array;
}

/** A fresh owner token in the core's format (src/gateway.ts): `pct_` + base64url of 32 random bytes. */
export function newOwnerToken(): string {
  return `pct_${randomBytes(32).toString("base64url")}`;
}

function putChunked(entries: Entries, id: string, text: string): void {
  const bytes = new TextEncoder().encode(text);
  const chunks = Math.max(1, Math.ceil(bytes.length / MAX_VALUE));
  if (chunks > 9) throw new Error(`${id} is ${bytes.length} bytes; at most ${9 * MAX_VALUE}`);
  put(entries, id, Uint8Array.of(chunks));
  for (let c = 0; c < chunks; c++) put(entries, `${id}.${c}`, bytes.subarray(c * MAX_VALUE, (c + 1) * MAX_VALUE));
}

/**
 * The key-value pairs for one board.
 * @throws Error on an empty SSID, a WPA2 password outside 8–63 characters, a config or contract the core
 * rejects (every problem listed), or more data than the NVS partition holds.
 */
export function provisionEntries(input: ProvisionInput): Entries {
  const entries: Entries = new Map();
  const utf8 = (s: string) => new TextEncoder().encode(s);
  if (input.ssid.length === 0 || utf8(input.ssid).length > 32) throw new Error("SSID must be 1-32 bytes (IEEE 802.11)");
  if (input.password !== "" && (input.password.length < 8 || input.password.length > 63)) throw new Error("WPA2 passphrase must be 8-63 characters");
  if (!/^pct_[A-Za-z0-9_-]{43}$/.test(input.ownerToken)) throw new Error("owner token must be pct_ + 43 base64url characters (tools/provision.ts makes one)");
  const parsed = parseGatewayConfig(input.configText, input.contracts);
  if (!parsed.ok) throw new Error(`config rejected:\n${parsed.errors.map((e) => `  ${e.path || "/"}: ${e.message}`).join("\n")}`);
  put(entries, "wifi.ssid", utf8(input.ssid));
  if (input.password !== "") put(entries, "wifi.pass", utf8(input.password));
  put(entries, "owner-token", new Uint8Array(createHash("sha256").update(input.ownerToken).digest()));
  putChunked(entries, "cfg", JSON.stringify(JSON.parse(input.configText)));
  if (input.contracts.length > MAX_INTEGRATIONS) throw new Error(`at most ${MAX_INTEGRATIONS} contracts`);
  input.contracts.forEach((c, i) => putChunked(entries, `int.${String(i).padStart(2, "0")}`, JSON.stringify(JSON.parse(c.text))));
  put(entries, "int.count", Uint8Array.of(input.contracts.length));
  if (input.uplinkCa !== undefined) put(entries, "uplink.ca", input.uplinkCa);
  const used = [...entries.values()].reduce((n, v) => n + 2 + Math.ceil(v.length / 32), 1);
  if (used > NVS_ENTRIES) throw new Error(`provisioning needs about ${used} NVS entries; the ${NVS_BYTES}-byte partition holds ${NVS_ENTRIES}`);
  return entries;
}

/** Reads a config folder as the Node board does (hosts/node/board.ts): gateway.json and contracts/*.json. */
export function readConfigDir(dir: string): { configText: string; contracts: { source: string; text: string }[] } {
  const contractsDir = join(dir, "contracts");
  const contracts = existsSync(contractsDir)
    ? readdirSync(contractsDir).filter((n) => n.endsWith(".json")).sort().map((n) => ({ source: join(contractsDir, n), text: readFileSync(join(contractsDir, n), "utf8") }))
    : [];
  return { configText: readFileSync(join(dir, "gateway.json"), "utf8"), contracts };
}

/** Where a generated owner token goes: the named file, else owner.token beside the output the user named. */
export function ownerTokenPath(o: { tokenOut?: string | undefined; nvsCsv?: string | undefined; linDir?: string | undefined }): string {
  if (o.tokenOut) return resolve(o.tokenOut);
  if (o.nvsCsv) return join(dirname(resolve(o.nvsCsv)), "owner.token");
  if (o.linDir) return join(dirname(resolve(o.linDir)), "owner.token");
  throw new Error("no output named: pass --nvs-csv or --lin-dir");
}

/** ESP-IDF nvs_partition_gen.py CSV: a namespace row, then one hex2bin blob per key (read back as ArrayBuffer by `preference`). */
export function nvsCsv(entries: Entries): string {
  const rows = ["key,type,encoding,value", "portcullis,namespace,,"];
  for (const [name, value] of entries) rows.push(`${name},data,hex2bin,${Buffer.from(value).toString("hex")}`);
  return `${rows.join("\n")}\n`;
}

/** The lin build's key files (hosts/moddable/lin/keystore.ts): `<dir>/<name>`, written then renamed. */
export function writeLinKeys(entries: Entries, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, value] of entries) {
    writeFileSync(join(dir, `${name}.new`), value, { mode: 0o600 });
    renameSync(join(dir, `${name}.new`), join(dir, name));
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      ssid: { type: "string" },
      "password-file": { type: "string" },
      config: { type: "string" },
      "uplink-ca": { type: "string" },
      "owner-token-file": { type: "string" },
      "nvs-csv": { type: "string" },
      "lin-dir": { type: "string" },
      "owner-token-out": { type: "string" },
    },
  });
  if (!values.ssid || !values.config || (!values["nvs-csv"] && !values["lin-dir"])) {
    console.error("usage: tsx tools/provision.ts --ssid NAME [--password-file F] --config DIR [--uplink-ca CA.der] [--owner-token-file F] (--nvs-csv OUT.csv | --lin-dir DIR) [--owner-token-out FILE]");
    process.exit(2);
  }
  const generated = values["owner-token-file"] === undefined;
  const ownerToken = generated ? newOwnerToken() : readFileSync(values["owner-token-file"]!, "utf8").trim();
  const entries = provisionEntries({
    ssid: values.ssid,
    password: values["password-file"] ? readFileSync(values["password-file"], "utf8").replace(/\r?\n$/, "") : "",
    ownerToken,
    ...readConfigDir(values.config),
    ...(values["uplink-ca"] ? { uplinkCa: new Uint8Array(readFileSync(values["uplink-ca"])) } : {}),
  });
  // The token first, and never over an old one: provisioning data whose token is lost locks the owner out.
  const tokenFile = generated ? ownerTokenPath({ tokenOut: values["owner-token-out"], nvsCsv: values["nvs-csv"], linDir: values["lin-dir"] }) : undefined;
  if (tokenFile !== undefined) {
    if (existsSync(tokenFile)) {
      console.error(`error: ${tokenFile} exists; pass --owner-token-file ${tokenFile} to keep that token, or move it away first`);
      process.exit(1);
    }
    mkdirSync(dirname(tokenFile), { recursive: true, mode: 0o700 });
    writeFileSync(tokenFile, `${ownerToken}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(tokenFile, 0o600);
  }
  if (values["nvs-csv"]) {
    writeFileSync(values["nvs-csv"], nvsCsv(entries), { mode: 0o600 });
    console.log(`wrote ${values["nvs-csv"]} (${entries.size} keys). Next, with ESP-IDF's environment loaded:`);
    console.log(`  python $IDF_PATH/components/nvs_flash/nvs_partition_generator/nvs_partition_gen.py generate ${values["nvs-csv"]} nvs.bin 0x6000`);
    console.log("  esptool.py --chip esp32 write_flash 0x9000 nvs.bin");
  }
  if (values["lin-dir"]) {
    writeLinKeys(entries, values["lin-dir"]);
    console.log(`wrote ${entries.size} keys to ${values["lin-dir"]}`);
  }
  if (tokenFile !== undefined) console.log(`owner token written to ${tokenFile} (mode 600); the board keeps only its SHA-256`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
