/**
 * The vendor's side, as a reference: opens Portcullis envelopes (SPEC.md "Outbound envelope") with the
 * vendor's private key, using @hpke/core (an HPKE implementation independent of the gateway's).
 *
 *   tsx tools/open-envelope.ts --key vendor.key --integration ID --contract-version V --topic T <file | hex>
 *
 * `VendorReceiver` is importable: it tracks contexts by their enc, opens each envelope at its own
 * sequence number, reports duplicates (seq already seen) and gaps (seqs never seen), and restores the
 * gateway's order by envelope seq (`take()`, through a `ReorderBuffer`): a gateway keeps a window of
 * messages in flight and resends the unacknowledged ones after a reconnect, so copies and, behind
 * some brokers, reordering reach the vendor; the seq says where each belongs.
 */
import { createHash, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { Aes128Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256, type RecipientContext } from "@hpke/core";
import { envelopeAad, envelopeInfo, keyId, parseEnvelope } from "../src/outbound/envelope.js";
import { constantTimeEqual as equalBytes, fromHex, toHex } from "../src/util/bytes.js";
import { nodeCrypto } from "../hosts/node/crypto.js";

export type Received =
  | { readonly kind: "message"; readonly seq: number; readonly payload: Uint8Array; readonly plaintext: boolean; readonly missing: number }
  | { readonly kind: "duplicate"; readonly seq: number }
  | { readonly kind: "rejected"; readonly reason: "malformed" | "wrong-key" | "unknown-context" | "auth" | "plaintext-refused"; readonly detail: string };

export interface VendorReceiverOptions {
  /** The vendor's 32-byte P-256 private scalar. */
  readonly privateKey: Uint8Array;
  readonly integration: string;
  readonly contractVersion: string;
  /** Accept plaintext envelopes (only for contracts that say `encryption: "none"`). Default false. */
  readonly allowPlaintext?: boolean;
  /** Contexts remembered at once (oldest forgotten first). Default 64. */
  readonly maxContexts?: number;
  /** Messages held back for an earlier seq (`ReorderBuffer` maxHeld): at least the gateway's window. Default 64. */
  readonly maxHeld?: number;
}

/** A message released in seq order. */
export interface Released<T> {
  readonly seq: number;
  readonly value: T;
  /** Seqs skipped just before this one (gateway drops, or messages still to come late). */
  readonly missing: number;
  /** Arrived after its place was passed (more than `maxHeld` later ones came first): out of order. */
  readonly late: boolean;
}

/**
 * Puts messages back in envelope-seq order and drops copies. A message is released as soon as every
 * seq before it was released; one that arrives early waits, at most `maxHeld` of them at once (set
 * it to at least the gateway's window), after which the lowest missing seq is given up as a gap —
 * the gateway's audit log says why (a drop) — and released late should it still come. A seq already
 * released or waiting is a duplicate. Before the first message the start is `first`, or else the
 * first seq that arrives.
 */
export class ReorderBuffer<T> {
  /** The next seq to release (undefined before the first arrival when `first` was not given). */
  next: number | undefined;
  duplicates = 0;
  readonly #maxHeld: number;
  readonly #held = new Map<number, T>();
  /** Seqs passed over as gaps, [from, to] inclusive, newest last (bounded: the oldest are forgotten). */
  readonly #skipped: [number, number][] = [];

  constructor(options: { readonly maxHeld?: number; readonly first?: number } = {}) {
    this.#maxHeld = options.maxHeld ?? 64;
    if (!Number.isInteger(this.#maxHeld) || this.#maxHeld < 1) throw new RangeError("maxHeld must be a positive integer");
    this.next = options.first;
  }

  /** Messages waiting for an earlier seq. */
  get held(): number {
    return this.#held.size;
  }

  /** Takes one arrival; returns what it releases, in seq order (nothing for a duplicate). */
  push(seq: number, value: T): Released<T>[] {
    this.next ??= seq;
    if (seq < this.next) {
      const i = this.#skipped.findIndex(([a, b]) => seq >= a && seq <= b);
      const range = this.#skipped[i];
      if (!range) {
        this.duplicates++;
        return [];
      }
      // A message given up as a gap came after all: released now, out of order, marked late.
      const [a, b] = range;
      this.#skipped.splice(i, 1, ...([[a, seq - 1], [seq + 1, b]] as [number, number][]).filter(([x, y]) => x <= y));
      return [{ seq, value, missing: 0, late: true }];
    }
    if (this.#held.has(seq)) {
      this.duplicates++;
      return [];
    }
    this.#held.set(seq, value);
    const out = this.#release();
    while (this.#held.size > this.#maxHeld) out.push(...this.#skipTo(this.#lowestHeld()));
    return out;
  }

  /** Releases everything waiting, in order, giving up the gaps before each (the stream is idle or over). */
  flush(): Released<T>[] {
    const out: Released<T>[] = [];
    while (this.#held.size > 0) out.push(...this.#skipTo(this.#lowestHeld()));
    return out;
  }

  #lowestHeld(): number {
    let low = Infinity;
    for (const k of this.#held.keys()) if (k < low) low = k;
    return low;
  }

  /** Gives up every seq from `next` to `to` − 1 as a gap and releases from `to`. */
  #skipTo(to: number): Released<T>[] {
    const from = this.next as number;
    if (to > from) {
      this.#skipped.push([from, to - 1]);
      if (this.#skipped.length > 1024) this.#skipped.shift();
    }
    this.next = to;
    const out = this.#release();
    const first = out[0];
    if (first) out[0] = { ...first, missing: to - from };
    return out;
  }

  #release(): Released<T>[] {
    const out: Released<T>[] = [];
    for (let s = this.next as number; this.#held.has(s); s++) {
      out.push({ seq: s, value: this.#held.get(s) as T, missing: 0, late: false });
      this.#held.delete(s);
      this.next = s + 1;
    }
    return out;
  }
}

/** A fresh ArrayBuffer holding exactly these bytes (a Buffer's `.buffer` may be a shared pool). */
function ab(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

/** Reads a vendor key file (PKCS#8 PEM, as tools/vendor-keygen.ts writes) to the raw 32-byte scalar. */
export function readVendorKey(path: string): Uint8Array {
  const jwk = createPrivateKey(readFileSync(path)).export({ format: "jwk" });
  if (jwk.crv !== "P-256" || !jwk.d) throw new Error(`${path}: not a P-256 private key`);
  return new Uint8Array(Buffer.from(jwk.d, "base64url"));
}

/**
 * Receives one gateway's envelopes for one integration: `open` reports each arrival (a new seq, or a
 * duplicate), `take` hands out the opened messages in seq order, each once.
 */
export class VendorReceiver {
  /** Highest sequence number opened so far (−1 before the first). */
  lastSeq = -1;
  /** Sequence numbers below `lastSeq` not received (messages the gateway dropped or still to come). */
  missingTotal = 0;
  readonly #order: ReorderBuffer<Uint8Array>;
  #released: Released<Uint8Array>[] = [];
  readonly #o: VendorReceiverOptions;
  readonly #info: Uint8Array;
  readonly #keyId: Uint8Array;
  readonly #contexts = new Map<string, RecipientContext>();
  #key: Promise<CryptoKey>;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: VendorReceiverOptions) {
    if (options.privateKey.length !== 32) throw new RangeError("privateKey must be a 32-byte P-256 scalar");
    this.#o = options;
    this.#info = envelopeInfo(options.integration, options.contractVersion);
    const c = nodeCrypto();
    this.#keyId = keyId(c, c.p256PublicKey(options.privateKey));
    this.#key = suite.kem.importKey("raw", ab(options.privateKey), false);
    this.#order = new ReorderBuffer({ maxHeld: options.maxHeld ?? 64 });
  }

  /** The messages released in seq order since the last call (each seq once, duplicates dropped). */
  take(): Released<Uint8Array>[] {
    const out = this.#released;
    this.#released = [];
    return out;
  }

  /** Releases the messages still waiting for an earlier seq (the stream went idle), then `take`s. */
  flush(): Released<Uint8Array>[] {
    this.#released.push(...this.#order.flush());
    return this.take();
  }

  /** A receiver from a key file written by tools/vendor-keygen.ts (PKCS#8 PEM). */
  static fromKeyFile(path: string, options: Omit<VendorReceiverOptions, "privateKey">): VendorReceiver {
    return new VendorReceiver({ ...options, privateKey: readVendorKey(path) });
  }

  /** Opens one envelope and describes the outcome as one line of text (for demos and logs). */
  async openToText(envelope: Uint8Array, topic: string): Promise<string> {
    const r = await this.open(envelope, topic);
    if (r.kind === "message") {
      const body = Buffer.from(r.payload).toString("utf8");
      return `#${r.seq}${r.plaintext ? " (plaintext)" : ""}${r.missing > 0 ? ` (${r.missing} missing before it)` : ""} ${body}`;
    }
    return r.kind === "duplicate" ? `#${r.seq} duplicate` : `rejected (${r.reason}): ${r.detail}`;
  }

  /** Opens one envelope received on `topic`. Calls are serialized, so arrival order is kept. */
  open(envelope: Uint8Array, topic: string): Promise<Received> {
    const next = this.#chain.then(() => this.#open(envelope, topic));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #open(bytes: Uint8Array, topic: string): Promise<Received> {
    let env;
    try {
      env = parseEnvelope(bytes);
    } catch (e) {
      return { kind: "rejected", reason: "malformed", detail: (e as Error).message };
    }
    let payload: Uint8Array;
    if (env.plaintext) {
      if (!this.#o.allowPlaintext) return { kind: "rejected", reason: "plaintext-refused", detail: "plaintext envelope" };
      payload = env.body;
    } else {
      if (!equalBytes(env.keyId, this.#keyId)) return { kind: "rejected", reason: "wrong-key", detail: toHex(env.keyId) };
      const ctxId = toHex(env.contextId);
      let ctx = this.#contexts.get(ctxId);
      if (!ctx && env.enc) {
        const digest = createHash("sha256").update(env.enc).digest().subarray(0, 8);
        if (!equalBytes(new Uint8Array(digest), env.contextId)) return { kind: "rejected", reason: "malformed", detail: "context id does not match enc" };
        try {
          ctx = await suite.createRecipientContext({ recipientKey: await this.#key, enc: ab(env.enc), info: ab(this.#info) });
        } catch (e) {
          return { kind: "rejected", reason: "malformed", detail: `bad enc: ${(e as Error).message}` };
        }
        this.#remember(ctxId, ctx);
      }
      if (!ctx) return { kind: "rejected", reason: "unknown-context", detail: ctxId };
      // Open at the envelope's own sequence number. @hpke/core keeps it in the context's `_ctx.seq`
      // (RFC 9180 §5.2 nonce = base_nonce XOR seq); we set it rather than count, so loss never desyncs.
      const inner = (ctx as unknown as { _ctx?: { seq?: unknown } })._ctx;
      if (!inner || typeof inner.seq !== "number") throw new Error("@hpke/core changed: context has no _ctx.seq");
      inner.seq = env.seq;
      try {
        payload = new Uint8Array(await ctx.open(ab(env.body), ab(envelopeAad(env.header, topic))));
      } catch (e) {
        return { kind: "rejected", reason: "auth", detail: `seq ${env.seq}: ${(e as Error).message}` };
      }
    }
    const dup = this.#order.duplicates;
    this.#released.push(...this.#order.push(env.seq, payload));
    if (this.#order.duplicates !== dup) return { kind: "duplicate", seq: env.seq };
    if (env.seq < this.lastSeq) {
      // A seq below the highest one: it fills a gap (arrived out of order).
      this.missingTotal = Math.max(0, this.missingTotal - 1);
      return { kind: "message", seq: env.seq, payload, plaintext: env.plaintext, missing: 0 };
    }
    const missing = this.lastSeq < 0 ? 0 : env.seq - this.lastSeq - 1;
    this.missingTotal += missing;
    this.lastSeq = env.seq;
    return { kind: "message", seq: env.seq, payload, plaintext: env.plaintext, missing };
  }

  #remember(id: string, ctx: RecipientContext): void {
    this.#contexts.set(id, ctx);
    const max = this.#o.maxContexts ?? 64;
    for (const k of this.#contexts.keys()) {
      if (this.#contexts.size <= max) break;
      this.#contexts.delete(k);
    }
  }
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const keyPath = arg(argv, "--key");
  const input = argv.filter((a, i) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--")).pop();
  if (!keyPath || !input) {
    process.stderr.write("usage: tsx tools/open-envelope.ts --key vendor.key --integration ID --contract-version V --topic T [--allow-plaintext] <file | hex>\n");
    return 2;
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(input);
  } catch {
    bytes = fromHex(input);
  }
  const r = new VendorReceiver({
    privateKey: readVendorKey(keyPath),
    integration: arg(argv, "--integration") ?? "",
    contractVersion: arg(argv, "--contract-version") ?? "",
    allowPlaintext: argv.includes("--allow-plaintext"),
  });
  const out = await r.open(bytes, arg(argv, "--topic") ?? "");
  if (out.kind !== "message") {
    process.stderr.write(`${JSON.stringify(out)}\n`);
    return 1;
  }
  process.stderr.write(`seq ${out.seq}${out.plaintext ? " (plaintext)" : ""}\n`);
  process.stdout.write(out.payload);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
