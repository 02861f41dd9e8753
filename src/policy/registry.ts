/** Contract lifecycle: load, change review (approve / reject), removal, blocking on invalid text, the flow index. */
import type { AuditEvent } from "../audit/types.js";
import type { Crypto } from "../ports.js";
import { parseContract, type ContractError } from "./contract.js";
import { compile, FlowIndex, type Compiled, type CompiledFlow } from "./compile.js";
import { diffContracts, summarize, type Change } from "./diff.js";
import { KeyPrefix, type Ledger } from "./ledger.js";
import type { PolicyLimits } from "./reasons.js";
import { toHex, tryUtf8 as utf8Decode, utf8 as utf8Encode } from "../util/bytes.js";
import { isValidTopicFilter, topicMatches } from "../mqtt/topic.js";

export type LoadResult =
  | { readonly status: "accepted"; readonly integration: string; readonly changes: readonly Change[] }
  | { readonly status: "pending-review"; readonly integration: string; readonly changes: readonly Change[] }
  | { readonly status: "rejected"; readonly integration: string | null; readonly errors: readonly ContractError[] };

export interface Entry {
  readonly id: string;
  source: string;
  readonly rank: number;
  /** The version enforced. */
  current: Compiled | undefined;
  pending: { compiled: Compiled; changes: Change[] } | undefined;
  /** The loaded text differs from the approved digest and the approved text is unknown: deny all. */
  unreviewed: boolean;
  /** Errors of the last load; non-empty blocks the integration. */
  errors: ContractError[];
  /**
   * Errors of the last loaded text when an approved version was in force: that version stays enforced
   * (the broken text never replaces it) until the owner fixes the file or removes the integration.
   */
  broken: ContractError[];
  quarantine: string | undefined;
}

/**
 * An integration whose contract was rejected at load with no approved version to keep in force: it is
 * listed as `blocked: <reason>`, and the messages its text claims (device × topic filter, read as far
 * as the text parses) are denied with reason `blocked` instead of falling through to `no-contract`.
 */
export interface Blocked {
  readonly id: string;
  readonly source: string;
  /** The first error, `path: message`, with how many more. */
  readonly reason: string;
  readonly errors: readonly ContractError[];
  /** The integrations limit refused it (not its text). */
  readonly overLimit: boolean;
  readonly claims: readonly { readonly device: string; readonly filter: string; readonly rule: string }[];
}

/** Claims read from one rejected text at most (a rejected text may be arbitrarily large). */
export const MAX_BLOCKED_CLAIMS = 256;
/** Rejected integrations kept listed at most; beyond it the oldest is forgotten (its messages then get `no-contract`). */
export const MAX_BLOCKED = 32;

const UNKNOWN_BASE: Change = Object.freeze({ path: "", what: "differs from the approved version, which is not available", relevant: true });

export class Registry {
  readonly entries = new Map<string, Entry>();
  /** Rejected at load and not in force (see {@link Blocked}), by id, in load order. */
  readonly blocked = new Map<string, Blocked>();
  index = new FlowIndex([]);
  readonly #crypto: Crypto;
  readonly #ledger: Ledger;
  readonly #limits: PolicyLimits;
  readonly #groups: Readonly<Record<string, readonly string[]>> | undefined;
  readonly #emit: (e: AuditEvent) => void;
  /** Called when an integration's enforced version changes or it is removed (rate and counter state). */
  readonly #changed: (id: string, removed: boolean) => void;
  #nextRank = 0;

  constructor(
    crypto: Crypto,
    ledger: Ledger,
    limits: PolicyLimits,
    groups: Readonly<Record<string, readonly string[]>> | undefined,
    emit: (e: AuditEvent) => void,
    changed: (id: string, removed: boolean) => void,
  ) {
    this.#crypto = crypto;
    this.#ledger = ledger;
    this.#limits = limits;
    this.#groups = groups;
    this.#emit = emit;
    this.#changed = changed;
  }

  /** `idHint`: the integration a text that does not parse far enough to name itself belongs to. */
  load(text: string, source: string, baseline: string | undefined, idHint?: string): LoadResult {
    const parsed = parseContract(text, this.#limits);
    if (!parsed.ok) return this._reject(text, source, parsed.errors, idHint);
    const id = parsed.contract.id;
    let e = this.entries.get(id);
    if (!e && this.entries.size >= this.#limits.integrations) {
      return this._reject(text, source, [{ path: "", message: `more than the limit of ${this.#limits.integrations} integrations` }], undefined, true);
    }
    const rank = e ? e.rank : this.#nextRank;
    const built = compile(parsed.contract, this._digest(text), this.#groups, rank);
    if ("errors" in built) return this._reject(text, source, built.errors);
    const next = built.compiled;
    if (!e) {
      this.#nextRank++;
      const q = this.#ledger.get(KeyPrefix.quarantine, id);
      e = { id, source, rank, current: undefined, pending: undefined, unreviewed: false, errors: [], broken: [], quarantine: q ? (utf8Decode(q) ?? "quarantined") : undefined };
      this.entries.set(id, e);
    }
    e.source = source;
    e.errors = [];
    e.broken = [];
    if (!e.current) {
      const approved = this.#ledger.get(KeyPrefix.approved, id);
      const approvedHex = approved ? toHex(approved) : undefined;
      if (approvedHex === undefined || approvedHex === next.digest) return this._accept(e, next, [], approvedHex ? "accepted" : "new");
      if (baseline !== undefined && this._digest(baseline) === approvedHex) {
        const base = parseContract(baseline, this.#limits);
        const bc = base.ok ? compile(base.contract, approvedHex, this.#groups, rank) : undefined;
        if (bc && "compiled" in bc) e.current = bc.compiled;
      }
      if (!e.current) {
        e.unreviewed = true;
        e.pending = { compiled: next, changes: [UNKNOWN_BASE] };
        return this._pendingResult(e, [UNKNOWN_BASE]);
      }
    }
    const base = e.current;
    if (base.digest === next.digest) {
      e.pending = undefined;
      this._reindex();
      return { status: "accepted", integration: id, changes: [] };
    }
    const changes = diffContracts(base.contract, next.contract);
    if (changes.some((ch) => ch.relevant)) {
      e.pending = { compiled: next, changes };
      return this._pendingResult(e, changes);
    }
    return this._accept(e, next, changes, "updated");
  }

  approve(id: string, who: string): boolean {
    const e = this.entries.get(id);
    if (!e?.pending) return false;
    this._accept(e, e.pending.compiled, e.pending.changes, "approved", who);
    return true;
  }

  reject(id: string, who: string): boolean {
    const e = this.entries.get(id);
    if (!e?.pending || e.unreviewed) {
      if (e?.unreviewed) this.#emit({ kind: "contract", decision: "deny", integration: id, reason: "review-rejected", detail: { who, blocked: true } });
      return e?.unreviewed === true;
    }
    const version = e.pending.compiled.contract.version;
    e.pending = undefined;
    this._reindex();
    this.#emit({ kind: "contract", decision: "deny", integration: id, reason: "review-rejected", detail: { who, version } });
    return true;
  }

  remove(id: string, who: string): boolean {
    if (!this.entries.has(id) && this.blocked.delete(id)) {
      this.#emit({ kind: "contract", decision: "info", integration: id, reason: "removed", detail: { who, blocked: true } });
      return true;
    }
    if (!this.entries.delete(id)) return false;
    this.blocked.delete(id);
    this.#ledger.destroyKey(id);
    this.#ledger.clearConsent(id);
    this.#ledger.delete(KeyPrefix.approved, id);
    this.#changed(id, true);
    this._reindex();
    this.#emit({ kind: "contract", decision: "info", integration: id, reason: "removed", detail: { who } });
    return true;
  }

  /** Flows in the index: the enforced version, or the unreviewed one (so that it is denied by name). */
  flows(): CompiledFlow[] {
    const out: CompiledFlow[] = [];
    for (const e of this.entries.values()) {
      const c = e.current ?? e.pending?.compiled;
      if (c) out.push(...c.flows);
    }
    return out;
  }

  private _reindex(): void {
    this.index = new FlowIndex(this.flows());
  }

  private _digest(text: string): string {
    return toHex(this.#crypto.sha256(utf8Encode(text)));
  }

  private _block(id: string, source: string, text: string, errors: readonly ContractError[], overLimit: boolean, claim: boolean): void {
    this.blocked.delete(id);
    if (this.blocked.size >= MAX_BLOCKED) this.blocked.delete(this.blocked.keys().next().value!);
    // An entry with a version compiled keeps its flows in the index (denied as blocked there): no claims here.
    this.blocked.set(id, { id, source, reason: blockReason(errors), errors: errors.slice(), overLimit, claims: claim ? claimsOf(text, this.#groups) : [] });
  }

  /** The rejected integration whose text claims this message, if any (first in load order). */
  blockedFor(device: string, topic: string): { id: string; rule: string } | undefined {
    for (const b of this.blocked.values()) {
      for (const c of b.claims) if (c.device === device && topicMatches(c.filter, topic)) return { id: b.id, rule: c.rule };
    }
    return undefined;
  }

  private _accept(e: Entry, next: Compiled, changes: readonly Change[], reason: string, who?: string): LoadResult {
    this.blocked.delete(e.id);
    this.#ledger.set(KeyPrefix.approved, e.id, hexBytes(next.digest));
    e.current = next;
    e.pending = undefined;
    e.unreviewed = false;
    e.errors = [];
    this.#changed(e.id, false);
    this._reindex();
    const detail: Record<string, string | number> = { source: e.source, version: next.contract.version, digest: next.digest.slice(0, 16) };
    if (who !== undefined) detail.who = who;
    if (changes.length) detail.changes = summarize(changes);
    this.#emit({ kind: "contract", decision: "info", integration: e.id, reason, detail });
    return { status: "accepted", integration: e.id, changes };
  }

  private _pendingResult(e: Entry, changes: readonly Change[]): LoadResult {
    this.blocked.delete(e.id);
    this._reindex();
    const relevant = changes.filter((c) => c.relevant).length;
    const detail = { source: e.source, relevant, other: changes.length - relevant, changes: summarize(changes) };
    this.#emit({ kind: "contract", decision: "info", integration: e.id, reason: "pending-review", detail });
    return { status: "pending-review", integration: e.id, changes };
  }

  /**
   * A broken contract is rejected. When its integration has an approved version in force, that version
   * stays enforced (`inForce` in the record); when it is loaded without one, it is blocked.
   */
  private _reject(text: string, source: string, errors: readonly ContractError[], idHint?: string, overLimit = false): LoadResult {
    const id = guessId(text) ?? (idHint !== undefined && ID.test(idHint) ? idHint : null);
    const e = id === null ? undefined : this.entries.get(id);
    const keep = e !== undefined && e.current !== undefined && !e.unreviewed && e.errors.length === 0 ? e.current : undefined;
    if (e) {
      if (keep) e.broken = errors.slice();
      else e.errors = errors.slice();
      e.pending = undefined;
      this._reindex();
    }
    if (!keep) this._block(id ?? source.slice(0, 64), source, text, errors, overLimit, e?.current === undefined);
    const first = errors[0];
    const detail: Record<string, string | number | boolean> = { source, errors: errors.length, first: first ? `${first.path}: ${first.message}`.slice(0, 200) : "", blocked: e !== undefined && !keep };
    if (first?.line !== undefined) detail.line = first.line;
    if (keep) detail.inForce = keep.contract.version;
    this.#emit({ kind: "contract", decision: "deny", reason: "contract-invalid", ...(id === null ? {} : { integration: id }), detail });
    return { status: "rejected", integration: id, errors };
  }
}

const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** `path: message (and n more)` of the first error. */
export function blockReason(errors: readonly ContractError[]): string {
  const first = errors[0];
  if (!first) return "rejected";
  return `${first.path ? `${first.path}: ` : ""}${first.message}`.slice(0, 200) + (errors.length > 1 ? ` (and ${errors.length - 1} more)` : "");
}

/** The id a broken contract claims, when its text still parses far enough to say. */
function guessId(text: string): string | null {
  try {
    const v = JSON.parse(text) as { id?: unknown };
    return typeof v === "object" && v !== null && typeof v.id === "string" && ID.test(v.id) ? v.id : null;
  } catch {
    return null;
  }
}

/**
 * What a rejected text claims, read as far as it parses: each flow's devices (and its groups' members)
 * × its topic filters; a flow whose topics cannot be read claims all of its devices' topics (`#`).
 * At most {@link MAX_BLOCKED_CLAIMS}. A text that is not JSON claims nothing.
 */
function claimsOf(text: string, groups: Readonly<Record<string, readonly string[]>> | undefined): { device: string; filter: string; rule: string }[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  const flows = typeof v === "object" && v !== null ? (v as { flows?: unknown }).flows : undefined;
  if (!Array.isArray(flows)) return [];
  const out: { device: string; filter: string; rule: string }[] = [];
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : []);
  for (let i = 0; i < flows.length && out.length < MAX_BLOCKED_CLAIMS; i++) {
    const f = flows[i] as { id?: unknown; devices?: unknown; groups?: unknown; topics?: unknown } | null;
    if (typeof f !== "object" || f === null) continue;
    const rule = typeof f.id === "string" ? f.id.slice(0, 64) : `flow-${i}`;
    const devices = strings(f.devices);
    for (const g of strings(f.groups)) devices.push(...(groups && Object.prototype.hasOwnProperty.call(groups, g) ? groups[g]! : []));
    let topics = strings(f.topics).filter(isValidTopicFilter);
    if (topics.length === 0 || devices.length * topics.length > MAX_BLOCKED_CLAIMS - out.length) topics = ["#"];
    for (const device of devices) for (const filter of topics) if (out.length < MAX_BLOCKED_CLAIMS) out.push({ device, filter, rule });
  }
  return out;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
