/** Change review: the difference between two versions of a contract, each change marked privacy-relevant or not. */
import type { Contract, Destination, Flow } from "./contract.js";
import { breachHours } from "./contract.js";

/** One change. `relevant` changes wait for the owner's approval; the others apply at once. */
export interface Change {
  /** Where, as "/flows/<flow id>/fields/<path>" style locators (ids, not indexes). */
  readonly path: string;
  /** What changed, e.g. "added", "30 → 90". */
  readonly what: string;
  readonly relevant: boolean;
}

/** Every change from `a` (enforced) to `b` (loaded). Same id assumed. */
export function diffContracts(a: Contract, b: Contract): Change[] {
  const out: Change[] = [];
  const add = (path: string, what: string, relevant: boolean): void => void out.push({ path, what, relevant });
  for (const k of ["version", "vendor", "contact", "effective"] as const) if (a[k] !== b[k]) add(`/${k}`, `${a[k]} → ${b[k]}`, false);
  if (a.purpose !== b.purpose) add("/purpose", "changed", true);
  diffById(a.destinations, b.destinations, "/destinations", add, diffDestination);
  diffById(a.flows, b.flows, "/flows", add, diffFlow);
  const ta = a.terms;
  const tb = b.terms;
  more(add, "/terms/retentionDays", ta.retentionDays, tb.retentionDays, true);
  more(add, "/terms/breachNotificationHours", breachHours(ta), breachHours(tb), true);
  more(add, "/terms/queue/maxBytes", ta.queue.maxBytes, tb.queue.maxBytes, true);
  more(add, "/terms/queue/ttlSeconds", ta.queue.ttlSeconds, tb.queue.ttlSeconds, true);
  if (ta.queue.overflow !== tb.queue.overflow) add("/terms/queue/overflow", `${ta.queue.overflow} → ${tb.queue.overflow}`, true);
  more(add, "/terms/exit/deletionDays", ta.exit.deletionDays, tb.exit.deletionDays, true);
  if (ta.exit.exportFormat !== tb.exit.exportFormat) add("/terms/exit/exportFormat", `${ta.exit.exportFormat} → ${tb.exit.exportFormat}`, false);
  if (ta.sla.uptimePercent !== tb.sla.uptimePercent) add("/terms/sla/uptimePercent", `${ta.sla.uptimePercent} → ${tb.sla.uptimePercent}`, false);
  if (ta.sla.maxLatencyMs !== tb.sla.maxLatencyMs) add("/terms/sla/maxLatencyMs", `${ta.sla.maxLatencyMs} → ${tb.sla.maxLatencyMs}`, false);
  const classes = new Set([...Object.keys(ta.consent), ...Object.keys(tb.consent)]);
  for (const c of classes) {
    const x = (ta.consent as Record<string, boolean | undefined>)[c];
    const y = (tb.consent as Record<string, boolean | undefined>)[c];
    // Dropping a consent requirement weakens the household's control; adding one strengthens it.
    if (x !== y) add(`/terms/consent/${c}`, `${String(x)} → ${String(y)}`, y === false);
  }
  return out;
}

/** Records a numeric change; an increase is `upRelevant`, a decrease is not. */
function more(add: (p: string, w: string, r: boolean) => void, path: string, x: number, y: number, upRelevant: boolean): void {
  if (x !== y) add(path, `${x} → ${y}`, y > x && upRelevant);
}

function diffById<T extends { readonly id: string }>(
  xs: readonly T[],
  ys: readonly T[],
  base: string,
  add: (p: string, w: string, r: boolean) => void,
  each: (x: T, y: T, path: string, add: (p: string, w: string, r: boolean) => void) => void,
): void {
  for (const x of xs) {
    const y = ys.find((v) => v.id === x.id);
    if (!y) add(`${base}/${x.id}`, "removed", false);
    else each(x, y, `${base}/${x.id}`, add);
  }
  for (const y of ys) if (!xs.some((x) => x.id === y.id)) add(`${base}/${y.id}`, "added", true);
}

function diffDestination(x: Destination, y: Destination, p: string, add: (p: string, w: string, r: boolean) => void): void {
  for (const k of ["protocol", "host", "port", "topic", "publicKey", "keyId"] as const) {
    if (x[k] !== y[k]) add(`${p}/${k}`, k === "publicKey" ? "changed" : `${String(x[k])} → ${String(y[k])}`, true);
  }
  if (x.encryption !== y.encryption) add(`${p}/encryption`, `${x.encryption} → ${y.encryption}`, y.encryption === "none");
  const xp = x.pins ?? [];
  const yp = y.pins ?? [];
  const removed = xp.filter((v) => yp.indexOf(v) < 0).length;
  const added = yp.filter((v) => xp.indexOf(v) < 0).length;
  if (removed) add(`${p}/pins`, `${removed} removed`, true);
  if (added) add(`${p}/pins`, `${added} added`, false);
}

function diffFlow(x: Flow, y: Flow, p: string, add: (p: string, w: string, r: boolean) => void): void {
  if (x.destination !== y.destination) add(`${p}/destination`, `${x.destination} → ${y.destination}`, true);
  sets(add, `${p}/devices`, x.devices ?? [], y.devices ?? []);
  sets(add, `${p}/groups`, x.groups ?? [], y.groups ?? []);
  sets(add, `${p}/topics`, x.topics, y.topics);
  for (const f of x.fields) {
    const g = y.fields.find((v) => v.path === f.path);
    if (!g) add(`${p}/fields${f.path}`, "removed", false);
    else if (g.class !== f.class) add(`${p}/fields${f.path}`, `class ${f.class} → ${g.class}`, true);
  }
  for (const g of y.fields) if (!x.fields.some((f) => f.path === g.path)) add(`${p}/fields${g.path}`, `added (${g.class})`, true);
  const xs = x.pseudonymize ?? [];
  const ys = y.pseudonymize ?? [];
  for (const v of xs) if (ys.indexOf(v) < 0) add(`${p}/pseudonymize${v}`, "no longer pseudonymized", y.fields.some((f) => f.path === v));
  for (const v of ys) if (xs.indexOf(v) < 0) add(`${p}/pseudonymize${v}`, "now pseudonymized", false);
  more(add, `${p}/rate/perMinute`, x.rate.perMinute, y.rate.perMinute, true);
  if (x.rate.minIntervalMs !== y.rate.minIntervalMs) {
    add(`${p}/rate/minIntervalMs`, `${x.rate.minIntervalMs} → ${y.rate.minIntervalMs}`, y.rate.minIntervalMs < x.rate.minIntervalMs);
  }
  if ((x.raw ?? false) !== (y.raw ?? false)) add(`${p}/raw`, `${String(x.raw ?? false)} → ${String(y.raw ?? false)}`, y.raw === true);
}

function sets(add: (p: string, w: string, r: boolean) => void, p: string, xs: readonly string[], ys: readonly string[]): void {
  for (const v of ys) if (xs.indexOf(v) < 0) add(p, `+${v}`, true);
  for (const v of xs) if (ys.indexOf(v) < 0) add(p, `-${v}`, false);
}

/** A short text of the changes for an audit record's detail (at most `max` characters). */
export function summarize(changes: readonly Change[], max = 240): string {
  let s = changes.map((c) => `${c.relevant ? "!" : ""}${c.path} ${c.what}`).join("; ");
  if (s.length > max) s = s.slice(0, max - 1) + "…";
  return s;
}
