/** The policy engine: default deny, exact minimization, pseudonyms, consent, change review, quarantine. */
import type { AuditEvent } from "../audit/types.js";
import type { Clock, Crypto, KeyStore, Random } from "../ports.js";
import { PortcullisError, ErrorCode } from "../errors.js";
import { DataClasses, type Contract, type ContractError, type DataClass } from "./contract.js";
import type { Compiled, CompiledFlow } from "./compile.js";
import type { Change } from "./diff.js";
import { FlowCounters, renderDataMap, type DataMap } from "./datamap.js";
import { decide, parsePayload, type ParsedPayload } from "./decide.js";
import { countUndeclared } from "./minimize.js";
import { ConsentStates, KeyPrefix, Ledger, type ConsentRecord, type ConsentState } from "./ledger.js";
import { RateLimiter } from "./rate.js";
import { DEFAULT_DENY_RULE, DEFAULT_POLICY_LIMITS, Reason, type PolicyLimits } from "./reasons.js";
import { Registry, blockReason, type Entry, type LoadResult } from "./registry.js";
import { utf8 as utf8Encode } from "../util/bytes.js";
import type { FlowDecision, FlowInput } from "./types.js";

export type { LoadResult } from "./registry.js";
export type { Change } from "./diff.js";
export type { ConsentRecord, ConsentState } from "./ledger.js";

export interface PolicyEngineOptions {
  readonly crypto: Crypto;
  readonly keys: KeyStore;
  readonly random: Random;
  readonly clock: Clock;
  /** Receives every consent, contract, admin and incident event; must not throw. */
  onEvent(e: AuditEvent): void;
  /** Device groups contracts may name (group → device ids). */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
  readonly limits?: Partial<PolicyLimits>;
}

export type IntegrationState = "active" | "pending-review" | "blocked" | "quarantined";

export interface IntegrationStatus {
  readonly id: string;
  readonly state: IntegrationState;
  readonly source: string;
  /** Version in force (undefined when none was ever valid or approved). */
  readonly version: string | undefined;
  readonly pending: { readonly version: string; readonly changes: readonly Change[] } | undefined;
  readonly errors: readonly ContractError[];
  /** Errors of the last loaded text while the approved `version` stays in force (empty when none). */
  readonly broken: readonly ContractError[];
  readonly quarantine: string | undefined;
  /** Why its contract was rejected at load with no approved version in force (`blocked: <reason>`). */
  readonly blocked: string | undefined;
  /** It was refused by the integrations limit, not for its text. */
  readonly overLimit: boolean;
}

const WHO = /^[\x20-\x7e]{1,64}$/;

/** Enforces integration contracts on each device message (see DESIGN.md "Policy engine"). */
export class PolicyEngine {
  readonly #o: PolicyEngineOptions;
  readonly #limits: PolicyLimits;
  readonly #ledger: Ledger;
  readonly #rates = new RateLimiter();
  readonly #counters: FlowCounters;
  readonly #reg: Registry;

  /** @throws PortcullisError(bad-option) when a port or `onEvent` is missing or a limit is not a positive integer. */
  constructor(options: PolicyEngineOptions) {
    for (const k of ["crypto", "keys", "random", "clock", "onEvent"] as const) {
      if (!options || !options[k]) throw new PortcullisError(ErrorCode.BadOption, `PolicyEngine: ${k} required`);
    }
    this.#o = options;
    this.#limits = { ...DEFAULT_POLICY_LIMITS, ...(options.limits ?? {}) };
    for (const [k, v] of Object.entries(this.#limits)) {
      if (!Number.isInteger(v) || v < 1) throw new PortcullisError(ErrorCode.BadOption, `PolicyEngine: limit ${k} must be a positive integer`);
    }
    this.#ledger = new Ledger(options.crypto, options.keys, options.random);
    this.#counters = new FlowCounters(this.#limits.mapDevices);
    this.#reg = new Registry(options.crypto, this.#ledger, this.#limits, options.groups, (e) => this._emit(e), (id, removed) => {
      this.#rates.forget(`${id}\u0000`);
      if (removed) this.#counters.forget(id);
    });
  }

  get limits(): PolicyLimits {
    return this.#limits;
  }

  /** Integrations loaded (what the `integrations` limit counts; blocked ones listed without an entry are not). */
  get loaded(): number {
    return this.#reg.entries.size;
  }

  /**
   * Loads one contract text (from `source`, e.g. a file name). A valid first version is accepted; a new
   * version of a loaded integration is diffed: privacy-relevant changes wait for {@link approve} while
   * the old version stays enforced, other changes apply at once. An invalid text is rejected and, when
   * its integration is known, blocks it (its flows deny with `contract-invalid`), except that an
   * approved version in force stays in force (listed in `broken`); `idHint` names the integration
   * of a text too broken to name itself (e.g. from its file name). After a reboot,
   * pass the last approved text as `baseline` so a pending change can be diffed against it; without
   * it, a text that differs from the approved digest in the KeyStore is denied until approved.
   * Never throws for bad contract text.
   */
  load(text: string, source: string, baseline?: string, idHint?: string): LoadResult {
    return this.#reg.load(text, source, baseline, idHint);
  }

  /**
   * Approves the pending version of an integration: it is enforced from the next message on.
   * @returns false when nothing is pending.
   * @throws PortcullisError(bad-option) on a bad `who`.
   */
  approve(integrationId: string, who: string): boolean {
    checkWho(who);
    return this.#reg.approve(integrationId, who);
  }

  /**
   * Rejects the pending version; the enforced one stays (an unreviewed integration stays denied).
   * @returns false when nothing is pending.
   * @throws PortcullisError(bad-option) on a bad `who`.
   */
  reject(integrationId: string, who: string): boolean {
    checkWho(who);
    return this.#reg.reject(integrationId, who);
  }

  /**
   * Removes an integration: its flows, consent ledger, approval and pseudonym key are destroyed.
   * @returns false when it was not loaded.
   * @throws PortcullisError(bad-option) on a bad `who`.
   */
  remove(integrationId: string, who = "owner"): boolean {
    checkWho(who);
    return this.#reg.remove(integrationId, who);
  }

  /**
   * Records a consent change durably, then enforces it from the very next message. A withdrawal also
   * destroys the integration's pseudonym key.
   * @throws PortcullisError(bad-option) on an unknown class or state or a bad `who`.
   */
  setConsent(integrationId: string, dataClass: string, state: ConsentState, who: string): void {
    checkWho(who);
    if ((DataClasses as readonly string[]).indexOf(dataClass) < 0) throw new PortcullisError(ErrorCode.BadOption, `unknown data class "${dataClass}"`);
    if (ConsentStates.indexOf(state) < 0) throw new PortcullisError(ErrorCode.BadOption, `unknown consent state "${String(state)}"`);
    checkId(integrationId);
    const previous = this.#ledger.consent(integrationId)[dataClass]?.state ?? null;
    this.#ledger.setConsent(integrationId, dataClass as DataClass, { state, time: this.#o.clock.now(), who });
    this._emit({ kind: "consent", decision: "info", integration: integrationId, reason: state, detail: { class: dataClass, who, previous } });
    if (state === "withdrawn" && this.#ledger.destroyKey(integrationId)) {
      this._emit({ kind: "admin", decision: "info", integration: integrationId, reason: "key-destroyed", detail: { cause: "consent-withdrawn", who } });
    }
  }

  /** The consent ledger of an integration (class → record). */
  consent(integrationId: string): Readonly<Record<string, ConsentRecord>> {
    return { ...this.#ledger.consent(integrationId) };
  }

  /**
   * Replaces the pseudonym key: new pseudonyms from the next message on.
   * @throws PortcullisError(bad-option) on a bad id or `who`; RangeError when the KeyStore refuses.
   */
  rotate(integrationId: string, who: string): void {
    checkWho(who);
    checkId(integrationId);
    const fingerprint = this.#ledger.rotate(integrationId);
    this._emit({ kind: "admin", decision: "info", integration: integrationId, reason: "key-rotated", detail: { who, key: fingerprint } });
  }

  /**
   * Destroys the pseudonym key (a new one is made if pseudonyms are needed again).
   * @throws PortcullisError(bad-option) on a bad id or `who`.
   */
  destroyKey(integrationId: string, who: string): void {
    checkWho(who);
    checkId(integrationId);
    this.#ledger.destroyKey(integrationId);
    this._emit({ kind: "admin", decision: "info", integration: integrationId, reason: "key-destroyed", detail: { cause: "owner", who } });
  }

  /**
   * Incident containment: every message for the integration is denied until {@link release}. Persisted.
   * @throws PortcullisError(bad-option) on a bad id or `who`; RangeError when the KeyStore refuses.
   */
  quarantine(integrationId: string, reason: string, who = "system"): void {
    checkWho(who);
    checkId(integrationId);
    const r = reason.slice(0, 120);
    this.#ledger.set(KeyPrefix.quarantine, integrationId, utf8Encode(r || "quarantined"));
    const e = this.#reg.entries.get(integrationId);
    if (e) e.quarantine = r || "quarantined";
    this._emit({ kind: "incident", decision: "deny", integration: integrationId, reason: "quarantined", detail: { why: r, who } });
  }

  /** Ends a quarantine. @throws PortcullisError(bad-option) on a bad id or `who`. */
  release(integrationId: string, who: string): void {
    checkWho(who);
    checkId(integrationId);
    this.#ledger.delete(KeyPrefix.quarantine, integrationId);
    const e = this.#reg.entries.get(integrationId);
    if (e) e.quarantine = undefined;
    this._emit({ kind: "incident", decision: "info", integration: integrationId, reason: "released", detail: { who } });
  }

  /**
   * Decides one device message: one decision per integration whose flow matches device and topic, or
   * exactly one deny (integration null, rule `default-deny`, reason `no-contract`) when none does. Never throws.
   */
  evaluate(input: FlowInput): FlowDecision[] {
    const matches = this.#reg.index.lookup(input.device, input.topic);
    if (matches.length === 0) {
      const b = this.#reg.blocked.size > 0 ? this.#reg.blockedFor(input.device, input.topic) : undefined;
      if (b !== undefined) {
        this.#counters.record(input.device, b.id, "deny", input.payload.length, 0, []);
        return [{ verdict: "deny", integration: b.id, rule: b.rule, reason: Reason.Blocked, fieldsDropped: 0, fieldsUndeclared: 0, classes: [] }];
      }
      this.#counters.record(input.device, null, "deny", input.payload.length, 0, []);
      return [{ verdict: "deny", integration: null, rule: DEFAULT_DENY_RULE, reason: Reason.NoContract, fieldsDropped: 0, fieldsUndeclared: 0, classes: [] }];
    }
    const out: FlowDecision[] = [];
    let parsed: ParsedPayload | undefined;
    const payloadDoc = (): ParsedPayload => (parsed ??= parsePayload(input.payload));
    for (const flow of matches) {
      const d = this._decideOne(flow, input, payloadDoc);
      this.#counters.record(input.device, flow.integration, d.verdict, input.payload.length, d.payload?.length ?? 0, d.classes);
      out.push(d);
    }
    return withUndeclared(out, matches, payloadDoc);
  }

  private _decideOne(flow: CompiledFlow, input: FlowInput, payloadDoc: () => ParsedPayload): FlowDecision {
    const e = this.#reg.entries.get(flow.integration) as Entry;
    const deny = (reason: string): FlowDecision => ({ verdict: "deny", integration: e.id, rule: flow.flow.id, reason, fieldsDropped: 0, fieldsUndeclared: 0, classes: [] });
    if (e.quarantine !== undefined) return deny(Reason.Quarantined);
    if (e.errors.length) return deny(Reason.Blocked);
    if (e.unreviewed) return deny(Reason.PendingReview);
    let keyFailed = false;
    const pseudonym = (t: string): string => {
      try {
        return this.#ledger.pseudonym(e.id, t);
      } catch (err) {
        keyFailed = true;
        throw err;
      }
    };
    try {
      return decide(flow, input, {
        maxPayload: this.#limits.payloadBytes,
        consent: this.#ledger.consent(e.id),
        pseudonym,
        rates: this.#rates,
        now: this.#o.clock.monotonic(),
        consentRequired: (e.current as Compiled).contract.terms.consent,
        payloadDoc,
      });
    } catch {
      // Fail closed: a KeyStore or random-source failure, or an engine fault, denies this message.
      return deny(keyFailed ? Reason.KeyUnavailable : Reason.EngineFault);
    }
  }

  /** Status of every loaded integration, in load order. */
  integrations(): IntegrationStatus[] {
    const out: IntegrationStatus[] = Array.from(this.#reg.entries.values()).map((e) => ({
      id: e.id,
      state: e.quarantine !== undefined ? "quarantined" : e.errors.length ? "blocked" : e.unreviewed || e.pending ? "pending-review" : "active",
      source: e.source,
      version: e.current?.contract.version,
      pending: e.pending ? { version: e.pending.compiled.contract.version, changes: e.pending.changes } : undefined,
      errors: e.errors,
      broken: e.broken,
      quarantine: e.quarantine,
      blocked: e.errors.length ? blockReason(e.errors) : undefined,
      overLimit: false,
    }));
    for (const b of this.#reg.blocked.values()) {
      if (this.#reg.entries.has(b.id)) continue;
      out.push({ id: b.id, state: "blocked", source: b.source, version: undefined, pending: undefined, errors: b.errors, broken: [], quarantine: undefined, blocked: b.reason, overLimit: b.overLimit });
    }
    return out;
  }

  /** The contract in force for an integration (destinations, keys, queue terms for the outbound side). */
  contract(integrationId: string): Contract | undefined {
    return this.#reg.entries.get(integrationId)?.current?.contract;
  }

  dataMap(): DataMap {
    return this.#counters.build(this.#reg.flows());
  }

  renderDataMap(): string {
    return renderDataMap(this.dataMap());
  }

  private _emit(ev: AuditEvent): void {
    try {
      this.#o.onEvent(ev);
    } catch {
      // onEvent must not throw; a throwing sink must not turn a decision into an exception.
    }
  }
}

/**
 * Sets each decision's `fieldsUndeclared`: the leaves no matched flow of any integration declares.
 * Only computed when some decision dropped fields and none let every field out (then it is 0).
 */
function withUndeclared(out: FlowDecision[], matches: readonly CompiledFlow[], payloadDoc: () => ParsedPayload): FlowDecision[] {
  let dropped = false;
  for (const d of out) {
    if (d.verdict !== "deny" && d.fieldsDropped === 0) return out;
    if (d.fieldsDropped > 0) dropped = true;
  }
  if (!dropped) return out;
  const parsed = payloadDoc();
  if (!parsed.ok) return out;
  const lists: (readonly CompiledFlow["fields"][number][])[] = [];
  for (const f of matches) if (f.flow.raw !== true) lists.push(f.fields);
  const u = countUndeclared(parsed.doc, lists);
  if (u === 0) return out;
  for (let i = 0; i < out.length; i++) out[i] = { ...(out[i] as FlowDecision), fieldsUndeclared: u };
  return out;
}

function checkId(id: string): void {
  if (typeof id !== "string" || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(id)) throw new PortcullisError(ErrorCode.BadOption, "bad integration id");
}

function checkWho(who: string): void {
  if (typeof who !== "string" || !WHO.test(who)) throw new PortcullisError(ErrorCode.BadOption, "who must be 1–64 printable ASCII characters");
}
