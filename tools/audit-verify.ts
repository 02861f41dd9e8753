/**
 * `npm run audit:verify -- <export.jsonl> --key <verification key file>`: checks an audit export
 * offline with the verification key alone (src/audit/verify.ts). Exit 0 and a one-line summary when
 * intact; exit 1 naming the first bad sequence number otherwise; exit 2 for bad arguments.
 */
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { verifyExport } from "../src/audit/verify.js";
import type { ChainCrypto } from "../src/audit/chain.js";

const USAGE = "usage: npm run audit:verify -- <export.jsonl> --key <audit-verification.key>";

/** SHA-256 and HMAC from node:crypto: all the verifier needs. */
export const nodeChainCrypto: ChainCrypto = {
  sha256: (d) => new Uint8Array(createHash("sha256").update(d).digest()),
  hmacSha256: (k, d) => new Uint8Array(createHmac("sha256", k).update(d).digest()),
};

/**
 * Reads a verification key file: 64 hex digits (as the Node board writes it; whitespace ignored) or
 * the raw 32 bytes.
 * @throws Error saying what is wrong with the file.
 */
export function readKeyFile(path: string): Uint8Array {
  const raw = readFileSync(path);
  if (raw.length === 32) return new Uint8Array(raw);
  const text = raw.toString("utf8").replace(/\s+/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(text)) {
    throw new Error(`${path} is not a verification key: expected 64 hex digits (or 32 raw bytes), found ${raw.length} bytes`);
  }
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** The tool without process globals, for tests: returns the exit code and the line to print. */
export function main(argv: readonly string[]): { code: number; out: string } {
  const files: string[] = [];
  let keyPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--key") {
      keyPath = argv[++i];
      if (keyPath === undefined) return { code: 2, out: `--key needs a file name\n${USAGE}` };
    } else if (a.startsWith("--key=")) keyPath = a.slice(6);
    else if (a === "--help" || a === "-h") return { code: 0, out: USAGE };
    else if (a.startsWith("-")) return { code: 2, out: `unknown option ${a}\n${USAGE}` };
    else files.push(a);
  }
  if (files.length !== 1) return { code: 2, out: `give exactly one export file (got ${files.length})\n${USAGE}` };
  if (keyPath === undefined) return { code: 2, out: `missing --key: pass the audit-verification.key written at first boot\n${USAGE}` };
  let key: Uint8Array;
  let text: string;
  try {
    key = readKeyFile(keyPath);
  } catch (e) {
    return { code: 2, out: `cannot use key: ${(e as Error).message}` };
  }
  try {
    text = readFileSync(files[0]!, "utf8");
  } catch (e) {
    return { code: 2, out: `cannot read export: ${(e as Error).message}` };
  }
  const r = verifyExport(text.split("\n"), key, nodeChainCrypto);
  return r.ok ? { code: 0, out: `audit-verify: ${r.message}` } : { code: 1, out: `audit-verify: FAILED at ${r.message}` };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { code, out } = main(process.argv.slice(2));
  (code === 0 ? console.log : console.error)(out);
  process.exit(code);
}
