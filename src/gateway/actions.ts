/**
 * The owner's actions, each written once: the serial console (src/gateway/commands.ts, who = console)
 * and the admin API's routes (src/admin/owner-routes.ts, who = the authenticated caller) both call
 * these. An action checks its input and answers a result or a typed error that names the bad field;
 * every change writes an `admin` record whose detail says who acted (`who`, `role`, `via`, `remote`),
 * besides the record the subsystem writes of the effect (consent, contract, incident, seal).
 */
import type { Clock, Crypto, Random } from "../ports.js";
import type { AuditEvent, DetailValue } from "../audit/types.js";
import type { Broker } from "../mqtt/broker.js";
import { DEVICE_ID, makeDeviceSecret } from "../config.js";
import { MAX_ADDED_DEVICES, type DeviceList } from "./device-list.js";
import { toBase64 } from "../util/bytes.js";
import type { Principal } from "../admin/routes.js";
import type { AuditHandle } from "./audit.js";
import type { OutboundHandle } from "./outbound.js";
import type { PolicyHandle } from "./policy.js";
import type { IntegrationStatus } from "../policy/engine.js";
import type { DataMap } from "../policy/datamap.js";
import type { Change } from "../policy/diff.js";
import { DataClasses, contractClasses } from "../policy/contract.js";
import { ConsentStates, type ConsentState } from "../policy/ledger.js";
import { TodayCounters, type Today } from "./today.js";

/** Who acts: an authenticated caller of the admin API, or {@link CONSOLE}. */
export type Actor = Principal;

/** The serial console: physical presence, the owner's role. */
export const CONSOLE: Actor = Object.freeze({ account: "console", role: "owner", via: "console", remote: "console" });

/** `bad-field` → 400, `unknown` → 404, `conflict` → 409, `unavailable` → 503. */
export type ActionErrorKind = "bad-field" | "unknown" | "conflict" | "unavailable";

export interface ActionError {
  readonly kind: ActionErrorKind;
  readonly message: string;
  /** The input at fault (`integration`, `class`, `state`, `reason`, `id`). */
  readonly field?: string;
}

export type ActionResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ActionError };

export interface IntegrationView {
  readonly id: string;
  readonly state: string;
  readonly version: string | null;
  readonly vendor: string | null;
  readonly purpose: string | null;
  readonly quarantine: string | null;
  readonly pendingVersion: string | null;
  /** Errors of the contract file while the approved version stays in force (empty when none). */
  readonly broken: readonly { path: string; message: string }[];
  readonly errors: readonly { path: string; message: string }[];
  /** Outbound routes: state and counters. */
  readonly uplink: { readonly state: string; readonly queued: number; readonly sent: number; readonly dropped: number };
}

export interface ContractView {
  readonly integration: string;
  readonly version: string | null;
  readonly vendor: string | null;
  readonly purpose: string | null;
  readonly retentionDays: number | null;
  readonly classes: readonly string[];
  readonly destinations: readonly string[];
  readonly pendingVersion: string | null;
}

export interface ChangeView extends Change {
  /** The change in plain words. */
  readonly words: string;
}

export interface PendingView {
  readonly integration: string;
  /** The version in force (null: none yet, the integration is denied until approved). */
  readonly from: string | null;
  readonly to: string;
  readonly changes: readonly ChangeView[];
  /** One sentence for the review page. */
  readonly summary: string;
}

export interface ConsentView {
  readonly integration: string;
  readonly class: string;
  /** True when the contract needs an opt-in before this class may leave. */
  readonly required: boolean;
  readonly state: ConsentState | null;
  readonly since: string | null;
  readonly who: string | null;
}

export interface DeviceView {
  readonly id: string;
  readonly username: string;
  readonly groups: readonly string[];
  readonly connected: boolean;
  readonly remote: string | null;
  readonly connectedSeconds: number | null;
  /** "config" (gateway.json) or "added" (over the admin API; removable there). */
  readonly source: "config" | "added";
  /** Its credentials are disabled (CONNACK 5): by the owner, an installer or an incident's containment. */
  readonly disabled: boolean;
}

export interface NewDevice {
  readonly id: string;
  readonly username: string;
  /** Shown once: the device keeps only its salted HMAC. */
  readonly password: string;
}

export interface ActionParts {
  readonly policy: PolicyHandle;
  readonly outbound: OutboundHandle;
  readonly audit: AuditHandle;
  readonly broker: Broker;
  readonly devices: DeviceList;
  readonly crypto: Crypto;
  readonly random: Random;
  readonly clock: Pick<Clock, "monotonic" | "now" | "isSet">;
  readonly record: (event: AuditEvent) => void;
  /** Whether a device's credentials are disabled (DeviceRegistry.isDisabled); absent: none is. */
  readonly isDisabled?: (id: string) => boolean;
  /** gateway.json's `utcOffsetMinutes`: where "today" starts (default 0, UTC). */
  readonly utcOffsetMinutes?: number;
}

export interface OwnerActions {
  integrations(): IntegrationView[];
  contracts(): ContractView[];
  pending(): PendingView[];
  approve(who: Actor, integration: unknown): ActionResult<{ integration: string; version: string | null }>;
  reject(who: Actor, integration: unknown): ActionResult<{ integration: string; version: string | null }>;
  /** Ends an integration: flows, consent, approval, pseudonym key and queue are gone. */
  remove(who: Actor, integration: unknown): ActionResult<{ integration: string }>;
  quarantine(who: Actor, integration: unknown, reason?: unknown): ActionResult<{ integration: string; reason: string }>;
  release(who: Actor, integration: unknown): ActionResult<{ integration: string }>;
  rotate(who: Actor, integration: unknown): ActionResult<{ integration: string }>;
  consent(): ConsentView[];
  /** A withdrawal also purges the queue and destroys the pseudonym key (resolves once purged). */
  setConsent(who: Actor, integration: unknown, dataClass: unknown, state: unknown): Promise<ActionResult<{ integration: string; class: string; state: ConsentState; previous: ConsentState | null }>>;
  hold(who: Actor, reason: unknown): Promise<ActionResult<{ seq: number; reason: string }>>;
  unhold(who: Actor): Promise<ActionResult<{ seq: number }>>;
  seal(who: Actor): ActionResult<{ seq: number }>;
  dataMap(): DataMap;
  devices(): DeviceView[];
  /** Adds a device with a generated password (returned once, never stored or recorded in clear). */
  addDevice(who: Actor, id: unknown, username?: unknown): ActionResult<NewDevice>;
  /** Removes a device added over the API and closes its session. */
  removeDevice(who: Actor, id: unknown): ActionResult<{ id: string }>;
  /** What left today (since the gateway's local midnight), per integration, from the audit log. */
  today(): Today;
}

const MAX_REASON = 120;

function fail<T>(kind: ActionErrorKind, message: string, field?: string): ActionResult<T> {
  return { ok: false, error: field === undefined ? { kind, message } : { kind, message, field } };
}

function ok<T>(value: T): ActionResult<T> {
  return { ok: true, value };
}

/** A change in words: "retention days: 30 → 90 (needs your approval)". */
export function changeInWords(c: Change): string {
  const parts = c.path.split("/").filter((p) => p !== "");
  const name = (p: string): string => p.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  let where: string;
  if (parts[0] === "flows" && parts.length >= 2) where = `flow "${parts[1]}"${parts.length > 2 ? " " + parts.slice(2).map(name).join(" ") : ""}`;
  else if (parts[0] === "destinations" && parts.length >= 2) where = `destination "${parts[1]}"${parts.length > 2 ? " " + parts.slice(2).map(name).join(" ") : ""}`;
  else if (parts[0] === "terms") where = parts.slice(1).map(name).join(" ");
  else where = parts.map(name).join(" ") || "contract";
  return `${where}: ${c.what}${c.relevant ? " (needs your approval)" : " (applies without approval)"}`;
}

function find(p: ActionParts, id: unknown): ActionResult<IntegrationStatus> {
  if (typeof id !== "string" || id === "") return fail("bad-field", "integration must be an integration id (see GET /api/v1/integrations)", "integration");
  const i = p.policy.engine.integrations().find((x) => x.id === id);
  return i ? ok(i) : fail("unknown", `unknown integration "${id}"`, "integration");
}

/** The actor's record of a change (the effect has its own record). */
function recordAction(p: ActionParts, who: Actor, action: string, integration: string | undefined, more: Record<string, DetailValue> = {}): void {
  p.record({
    kind: "admin",
    decision: "allow",
    reason: action,
    ...(integration === undefined ? {} : { integration }),
    detail: { ...more, who: who.account, role: who.role, via: who.via, remote: who.remote },
  });
}

function textOf(v: unknown, field: string, required: boolean): ActionResult<string> {
  if (v === undefined || v === null || v === "") return required ? fail("bad-field", `${field} is required`, field) : ok("");
  if (typeof v !== "string") return fail("bad-field", `${field} must be a string`, field);
  if (v.length > MAX_REASON || /[\u0000-\u001f\u007f]/.test(v)) return fail("bad-field", `${field} must be at most ${MAX_REASON} characters, without control characters`, field);
  return ok(v);
}

function review(p: ActionParts, who: Actor, id: unknown, approve: boolean): ActionResult<{ integration: string; version: string | null }> {
  const f = find(p, id);
  if (!f.ok) return f;
  const i = f.value;
  const version = i.pending?.version ?? i.version ?? null;
  const done = approve ? p.policy.approve(i.id, who.account) : p.policy.reject(i.id, who.account);
  if (!done) return fail("conflict", `nothing pending for ${i.id}`, "integration");
  recordAction(p, who, approve ? "contract-approved" : "contract-rejected", i.id, { version });
  return ok({ integration: i.id, version: approve ? (p.policy.engine.integrations().find((x) => x.id === i.id)?.version ?? null) : version });
}

export function createActions(p: ActionParts): OwnerActions {
  return new GatewayActions(p);
}

/**
 * The owner's actions as one class: its methods are built once with the module (in flash on the
 * device), an instance is two fields — not an object of ~25 closures per boot (DESIGN.md "Inside
 * startGateway").
 */
class GatewayActions implements OwnerActions {
  readonly #p: ActionParts;
  readonly #today: TodayCounters;

  constructor(p: ActionParts) {
    this.#p = p;
    this.#today = new TodayCounters({ query: (q) => p.audit.log.query(q), nextSeq: () => p.audit.log.nextSeq, clock: p.clock, ...(p.utcOffsetMinutes !== undefined ? { utcOffsetMinutes: p.utcOffsetMinutes } : {}) });
  }

  integrations(): ReturnType<OwnerActions["integrations"]> {
    const p = this.#p;
    const out = p.outbound.summary();
    return p.policy.engine.integrations().map((i) => {
      const routes = Object.entries(out).filter(([k]) => k.startsWith(i.id + "/")).map(([, v]) => v);
      const c = p.policy.engine.contract(i.id);
      return {
        id: i.id,
        state: i.state,
        version: i.version ?? null,
        vendor: c?.vendor ?? null,
        purpose: c?.purpose ?? null,
        quarantine: i.quarantine ?? null,
        pendingVersion: i.pending?.version ?? null,
        broken: i.broken.map((e) => ({ path: e.path, message: e.message })),
        errors: i.errors.map((e) => ({ path: e.path, message: e.message })),
        uplink: {
          state: routes.map((r) => r.state).join(",") || "none",
          queued: routes.reduce((n, s) => n + s.queued, 0),
          sent: routes.reduce((n, s) => n + s.sent, 0),
          dropped: routes.reduce((n, s) => n + Object.values(s.dropped).reduce((a, b) => a + b, 0), 0),
        },
      };
    });
  }

  contracts(): ReturnType<OwnerActions["contracts"]> {
    const p = this.#p;
    return p.policy.engine.integrations().map((i) => {
      const c = p.policy.engine.contract(i.id);
      return {
        integration: i.id,
        version: i.version ?? null,
        vendor: c?.vendor ?? null,
        purpose: c?.purpose ?? null,
        retentionDays: c?.terms.retentionDays ?? null,
        classes: c ? contractClasses(c) : [],
        destinations: c ? c.destinations.map((d) => `${d.host}:${d.port}`) : [],
        pendingVersion: i.pending?.version ?? null,
      };
    });
  }

  pending(): ReturnType<OwnerActions["pending"]> {
    const p = this.#p;
    const out: PendingView[] = [];
    for (const i of p.policy.engine.integrations()) {
      if (!i.pending) continue;
      const changes = i.pending.changes.map((c) => ({ path: c.path, what: c.what, relevant: c.relevant, words: changeInWords(c) }));
      const relevant = changes.filter((c) => c.relevant).length;
      const vendor = p.policy.engine.contract(i.id)?.vendor ?? i.id;
      out.push({
        integration: i.id,
        from: i.version ?? null,
        to: i.pending.version,
        changes,
        summary: `${vendor} ${i.version ? `v${i.version}` : "(no approved version)"} → v${i.pending.version}: ${changes.length} change${changes.length === 1 ? "" : "s"}, ${relevant} needing your approval`,
      });
    }
    return out;
  }

  approve(who: Actor, id: unknown): ReturnType<OwnerActions["approve"]> {
    return review(this.#p, who, id, true);
  }

  reject(who: Actor, id: unknown): ReturnType<OwnerActions["reject"]> {
    return review(this.#p, who, id, false);
  }

  remove(who: Actor, id: unknown): ReturnType<OwnerActions["remove"]> {
    const p = this.#p;
    const f = find(p, id);
    if (!f.ok) return f;
    if (!p.policy.remove(f.value.id, who.account)) return fail("conflict", `could not remove ${f.value.id}`, "integration");
    recordAction(p, who, "integration-removed", f.value.id);
    return ok({ integration: f.value.id });
  }

  quarantine(who: Actor, id: unknown, reason?: unknown): ReturnType<OwnerActions["quarantine"]> {
    const p = this.#p;
    const f = find(p, id);
    if (!f.ok) return f;
    const r = textOf(reason, "reason", false);
    if (!r.ok) return r;
    const why = r.value || "owner";
    p.policy.engine.quarantine(f.value.id, why, who.account);
    p.outbound.freeze(f.value.id, "quarantine");
    recordAction(p, who, "quarantine", f.value.id, { why });
    return ok({ integration: f.value.id, reason: why });
  }

  release(who: Actor, id: unknown): ReturnType<OwnerActions["release"]> {
    const p = this.#p;
    const f = find(p, id);
    if (!f.ok) return f;
    p.policy.engine.release(f.value.id, who.account);
    p.outbound.thaw(f.value.id, "released");
    recordAction(p, who, "release", f.value.id, { was: f.value.quarantine ?? null });
    return ok({ integration: f.value.id });
  }

  rotate(who: Actor, id: unknown): ReturnType<OwnerActions["rotate"]> {
    const p = this.#p;
    const f = find(p, id);
    if (!f.ok) return f;
    try {
      p.policy.engine.rotate(f.value.id, who.account);
    } catch (e) {
      return fail("unavailable", `the key store refused the new key: ${e instanceof Error ? e.message : String(e)}`);
    }
    recordAction(p, who, "key-rotate", f.value.id);
    return ok({ integration: f.value.id });
  }

  consent(): ReturnType<OwnerActions["consent"]> {
    const p = this.#p;
    const out: ConsentView[] = [];
    for (const i of p.policy.engine.integrations()) {
      const c = p.policy.engine.contract(i.id);
      const ledger = p.policy.engine.consent(i.id);
      const classes = c ? contractClasses(c) : (Object.keys(ledger) as string[]);
      for (const cls of classes) {
        const rec = ledger[cls];
        out.push({
          integration: i.id,
          class: cls,
          required: c ? (c.terms.consent as Record<string, boolean | undefined>)[cls] === true : false,
          state: rec?.state ?? null,
          since: rec ? new Date(rec.time).toISOString() : null,
          who: rec?.who ?? null,
        });
      }
    }
    return out;
  }

  async setConsent(who: Actor, id: unknown, dataClass: unknown, state: unknown): ReturnType<OwnerActions["setConsent"]> {
    const p = this.#p;
    const f = find(p, id);
    if (!f.ok) return f;
    if (typeof dataClass !== "string" || !(DataClasses as readonly string[]).includes(dataClass)) {
      return fail("bad-field", `unknown data class "${typeof dataClass === "string" ? dataClass : String(dataClass)}"; one of ${DataClasses.join(", ")}`, "class");
    }
    if (typeof state !== "string" || !(ConsentStates as readonly string[]).includes(state)) {
      return fail("bad-field", `state must be one of ${ConsentStates.join(", ")}`, "state");
    }
    const s = state as ConsentState;
    const previous = p.policy.engine.consent(f.value.id)[dataClass]?.state ?? null;
    p.policy.engine.setConsent(f.value.id, dataClass, s, who.account);
    recordAction(p, who, "consent", f.value.id, { class: dataClass, state: s, previous });
    if (s === "withdrawn") await p.outbound.purge(f.value.id, "consent-withdrawn");
    return ok({ integration: f.value.id, class: dataClass, state: s, previous });
  }

  async hold(who: Actor, reason: unknown): ReturnType<OwnerActions["hold"]> {
    const p = this.#p;
    const r = textOf(reason, "reason", true);
    if (!r.ok) return r;
    try {
      const seq = await p.audit.log.hold(r.value);
      recordAction(p, who, "legal-hold", undefined, { hold: r.value, record: seq });
      return ok({ seq, reason: r.value });
    } catch (e) {
      return fail("unavailable", `the audit log cannot take the hold: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async unhold(who: Actor): ReturnType<OwnerActions["unhold"]> {
    const p = this.#p;
    if (p.audit.held === undefined) return fail("conflict", "no legal hold");
    try {
      const seq = await p.audit.log.release();
      recordAction(p, who, "legal-hold-released", undefined, { record: seq });
      return ok({ seq });
    } catch (e) {
      return fail("unavailable", `the audit log cannot lift the hold: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  seal(who: Actor): ReturnType<OwnerActions["seal"]> {
    const p = this.#p;
    let seq: number;
    try {
      seq = p.audit.log.seal();
    } catch (e) {
      return fail("unavailable", `the audit log cannot seal: ${e instanceof Error ? e.message : String(e)}`);
    }
    recordAction(p, who, "seal", undefined, { record: seq });
    return ok({ seq });
  }

  dataMap(): ReturnType<OwnerActions["dataMap"]> {
    return this.#p.policy.engine.dataMap();
  }

  today(): ReturnType<OwnerActions["today"]> {
    return this.#today.read();
  }

  devices(): ReturnType<OwnerActions["devices"]> {
    const p = this.#p;
    const now = p.clock.monotonic();
    const live = new Map(p.broker.clients().map((c) => [c.clientId, c]));
    return p.devices.list().map((d) => {
      const c = live.get(d.id);
      return {
        id: d.id,
        username: d.username,
        groups: d.groups,
        connected: c !== undefined,
        remote: c?.remote ?? null,
        connectedSeconds: c ? Math.floor((now - c.since) / 1000) : null,
        source: p.devices.configured(d.id) ? "config" : "added",
        disabled: p.isDisabled?.(d.id) ?? false,
      };
    });
  }

  addDevice(who: Actor, id: unknown, username?: unknown): ReturnType<OwnerActions["addDevice"]> {
    const p = this.#p;
    if (typeof id !== "string" || !DEVICE_ID.test(id)) return fail("bad-field", "id must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit", "id");
    const user = username === undefined ? id : username;
    if (typeof user !== "string" || !DEVICE_ID.test(user)) return fail("bad-field", "username must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit", "username");
    if (p.devices.get(id)) return fail("conflict", `device "${id}" exists`, "id");
    if (p.devices.added >= MAX_ADDED_DEVICES) return fail("conflict", `at most ${MAX_ADDED_DEVICES} devices can be added over the API; add more in gateway.json`, "id");
    const raw = new Uint8Array(24);
    p.random.fill(raw);
    const password = toBase64(raw, true);
    const salt = new Uint8Array(16);
    p.random.fill(salt);
    try {
      p.devices.add({ id, username: user, secret: makeDeviceSecret(p.crypto, salt, password) });
    } catch (e) {
      return fail("unavailable", `the key store refused the device: ${e instanceof Error ? e.message : String(e)}`);
    }
    recordAction(p, who, "device-added", undefined, { device: id, username: user });
    return ok({ id, username: user, password });
  }

  removeDevice(who: Actor, id: unknown): ReturnType<OwnerActions["removeDevice"]> {
    const p = this.#p;
    if (typeof id !== "string" || id === "") return fail("bad-field", "id must be a device id", "id");
    if (!p.devices.get(id)) return fail("unknown", `unknown device "${id}"`, "id");
    if (p.devices.configured(id)) return fail("conflict", `device "${id}" is defined in gateway.json; remove it there`, "id");
    try {
      p.devices.remove(id);
    } catch (e) {
      return fail("unavailable", `the key store refused the change: ${e instanceof Error ? e.message : String(e)}`);
    }
    const wasConnected = p.broker.disconnect(id, "removed");
    recordAction(p, who, "device-removed", undefined, { device: id, disconnected: wasConnected });
    return ok({ id });
  }
}
