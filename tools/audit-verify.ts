/**
 * `npm run audit:verify -- <export.jsonl> --key <verification key file> [--checkpoint <file>]
 * [--fresh-within <duration>]`: checks an audit export offline with the verification key alone
 * (src/audit/verify.ts). Exit 0 and what the export vouches for when intact; exit 1 naming what is
 * wrong (the first bad sequence number where there is one); exit 2 for bad arguments, saying how to
 * fix them.
 */
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { verifyExport } from "../src/audit/verify.js";
import type { ChainCrypto } from "../src/audit/chain.js";
import { parseCheckpoint } from "../src/audit/checkpoint.js";

const USAGE = [
  "usage: npm run audit:verify -- <export.jsonl> --key <audit-verification.key> [--checkpoint <checkpoint.json>] [--fresh-within <duration>]",
  "  --checkpoint    a checkpoint saved earlier from GET /api/v1/audit/checkpoint: fails if the export ends before it",
  "  --fresh-within  fails if the export's newest seal is older than this, e.g. 30m, 2h, 1d (units ms, s, m, h, d)",
].join("\n");
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `90s`, `30m`, `2h`, `1d`, in ms; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

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

/** The tool without process globals, for tests: returns the exit code and the text to print. */
export function main(argv: readonly string[], now: number = Date.now()): { code: number; out: string } {
  const files: string[] = [];
  const opts: Record<"key" | "checkpoint" | "fresh-within", string | undefined> = { key: undefined, checkpoint: undefined, "fresh-within": undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    const name = a.startsWith("--") ? (eq > 0 ? a.slice(2, eq) : a.slice(2)) : undefined;
    if (a === "--help" || a === "-h") return { code: 0, out: USAGE };
    if (name !== undefined && name in opts) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === "" || (eq < 0 && v.startsWith("--"))) return { code: 2, out: `--${name} needs a value\n${USAGE}` };
      opts[name as keyof typeof opts] = v;
    } else if (a.startsWith("-")) return { code: 2, out: `unknown option ${a}\n${USAGE}` };
    else files.push(a);
  }
  if (files.length !== 1) return { code: 2, out: `give exactly one export file (got ${files.length})\n${USAGE}` };
  if (opts.key === undefined) return { code: 2, out: `missing --key: pass the audit-verification.key written at first boot\n${USAGE}` };
  let freshWithinMs: number | undefined;
  if (opts["fresh-within"] !== undefined) {
    freshWithinMs = parseDuration(opts["fresh-within"]);
    if (freshWithinMs === undefined) return { code: 2, out: `--fresh-within needs a duration such as 30m, 2h or 1d (got "${opts["fresh-within"]}")\n${USAGE}` };
  }
  let key: Uint8Array;
  let text: string;
  let checkpoint: unknown;
  try {
    key = readKeyFile(opts.key);
  } catch (e) {
    return { code: 2, out: `cannot use key: ${(e as Error).message}` };
  }
  if (opts.checkpoint !== undefined) {
    try {
      checkpoint = JSON.parse(readFileSync(opts.checkpoint, "utf8"));
      const c = parseCheckpoint(checkpoint);
      if (typeof c === "string") throw new Error(`${opts.checkpoint} is not a checkpoint: ${c}`);
    } catch (e) {
      return { code: 2, out: `cannot use checkpoint: ${(e as Error).message}; save the body of GET /api/v1/audit/checkpoint as it came` };
    }
  }
  try {
    text = readFileSync(files[0]!, "utf8");
  } catch (e) {
    return { code: 2, out: `cannot read export: ${(e as Error).message}` };
  }
  const r = verifyExport(text.split("\n"), key, nodeChainCrypto, {
    ...(checkpoint === undefined ? {} : { checkpoint }), ...(freshWithinMs === undefined ? {} : { freshWithinMs, now }),
  });
  if (!r.ok) return { code: 1, out: `audit-verify: FAILED${r.badSeq === undefined ? ":" : " at"} ${r.message}` };
  return { code: 0, out: [`audit-verify: ${r.message}`, ...r.details.map((d) => `  ${d}`)].join("\n") };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { code, out } = main(process.argv.slice(2));
  (code === 0 ? console.log : console.error)(out);
  process.exit(code);
}
