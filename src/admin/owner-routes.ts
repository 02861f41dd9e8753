/**
 * The owner's actions over HTTPS: one Route per action of src/gateway/actions.ts, JSON in and out.
 * Errors are `{"error", "field"}`: 400 a bad body or field, 404 an unknown integration, 409 a
 * conflict (approving with nothing pending, lifting a hold that is not there), 503 the log or key
 * store refusing. Roles (issue #11): the owner may do everything; the auditor reads contracts,
 * consent, the data map and status; the installer reads devices, integrations and contract drafts
 * (never flows, approvals, consent or holds). SPEC.md "Owner actions over HTTPS" lists them.
 */
import type { ActionResult, OwnerActions } from "../gateway/actions.js";
import type { AdminResponse } from "./api.js";
import { frozenTable } from "../util/frozen.js";
import { errorReply, jsonBody, jsonReply, type Role, type Route, type RouteCall } from "./routes.js";

const OWNER: readonly Role[] = ["owner"];
const READERS: readonly Role[] = ["owner", "auditor"];
const ALL: readonly Role[] = ["owner", "auditor", "installer"];
const SETUP: readonly Role[] = ["owner", "installer"];

const STATUS = { "bad-field": 400, unknown: 404, conflict: 409, unavailable: 503 } as const;

function answer<T>(r: ActionResult<T>, status = 200): AdminResponse {
  return r.ok ? jsonReply(status, r.value) : errorReply(STATUS[r.error.kind], r.error.message, r.error.field);
}

/** The JSON body, or its 400/415; then `f` with it. */
async function withBody(c: RouteCall, f: (body: Record<string, unknown>) => AdminResponse | Promise<AdminResponse>): Promise<AdminResponse> {
  const b = jsonBody(c.req);
  return b.ok ? f(b.value) : b.response;
}

/** Fields a body may carry; any other is a 400 naming it (a typo must not pass silently). */
function unexpected(body: Record<string, unknown>, allowed: readonly string[]): AdminResponse | undefined {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) return errorReply(400, `unexpected field "${k}"; this request takes ${allowed.length ? allowed.join(", ") : "no fields"}`, k);
  return undefined;
}

/** The consent state a body asks for: `state` ("opt-in" | "opt-out" | "withdrawn") or `grant` (true = opt-in, false = withdrawn). */
function consentState(body: Record<string, unknown>): { ok: true; state: unknown } | { ok: false; response: AdminResponse } {
  if (body.state !== undefined && body.grant !== undefined) return { ok: false, response: errorReply(400, "give either grant or state, not both", "grant") };
  if (body.state !== undefined) return { ok: true, state: body.state };
  if (body.grant === true) return { ok: true, state: "opt-in" };
  if (body.grant === false) return { ok: true, state: "withdrawn" };
  return { ok: false, response: errorReply(400, body.grant === undefined ? "grant (true or false) is required" : "grant must be true or false", "grant") };
}

/** POST /…/{id}/<verb> with an empty or `{}` body (or, for quarantine, `{reason}`). */
function onIntegration(verb: string, summary: string, run: (c: RouteCall, a: OwnerActions, body: Record<string, unknown>) => AdminResponse, fields: readonly string[] = []): Route<OwnerActions> {
  return {
    method: "POST",
    path: `/api/v1/integrations/{id}/${verb}`,
    roles: OWNER,
    summary,
    handle: (c, a) => withBody(c, (body) => unexpected(body, fields) ?? run(c, a, body)),
  };
}

function idOf(c: RouteCall): string {
  return c.params["id"] ?? "";
}

/**
 * The owner's routes: built once when the module loads and frozen (in flash on the device); each
 * handler gets the gateway's OwnerActions as its context (AdminApi's `tables`).
 */
export const OWNER_ROUTES: readonly Route<OwnerActions>[] = frozenTable<Route<OwnerActions>>([
  { method: "GET", path: "/api/v1/integrations", roles: ALL, summary: "each integration: state, version, vendor, uplink counters", handle: (_c, a) => jsonReply(200, { integrations: a.integrations() }) },
  onIntegration("quarantine", "quarantine: deny every flow, freeze the queue", (c, a, b) => answer(a.quarantine(c.principal, idOf(c), b.reason)), ["reason"]),
  onIntegration("release", "lift a quarantine", (c, a) => answer(a.release(c.principal, idOf(c)))),
  onIntegration("rotate", "new pseudonym key (new pseudonyms from the next message)", (c, a) => answer(a.rotate(c.principal, idOf(c)))),
  { method: "DELETE", path: "/api/v1/integrations/{id}", roles: OWNER, summary: "end an integration: flows, consent, approval, key, queue gone", handle: (c, a) => answer(a.remove(c.principal, idOf(c))) },

  { method: "GET", path: "/api/v1/contracts", roles: ALL, summary: "the contract in force per integration", handle: (_c, a) => jsonReply(200, { contracts: a.contracts() }) },
  { method: "GET", path: "/api/v1/contracts/pending", roles: ALL, summary: "pending contract versions with the diff in words", handle: (_c, a) => jsonReply(200, { pending: a.pending() }) },
  { method: "POST", path: "/api/v1/contracts/{id}/approve", roles: OWNER, summary: "enforce the pending version", handle: (c, a) => withBody(c, (b) => unexpected(b, []) ?? answer(a.approve(c.principal, idOf(c)))) },
  { method: "POST", path: "/api/v1/contracts/{id}/reject", roles: OWNER, summary: "refuse the pending version (the one in force stays)", handle: (c, a) => withBody(c, (b) => unexpected(b, []) ?? answer(a.reject(c.principal, idOf(c)))) },

  { method: "GET", path: "/api/v1/consent", roles: READERS, summary: "consent per integration × data class", handle: (_c, a) => jsonReply(200, { consent: a.consent() }) },
  {
    method: "POST", path: "/api/v1/consent", roles: OWNER, summary: "grant or withdraw consent for one integration × data class",
    handle: (c, a) => withBody(c, async (b) => {
      const bad = unexpected(b, ["integration", "class", "grant", "state"]);
      if (bad) return bad;
      if (b.integration === undefined) return errorReply(400, "integration is required", "integration");
      if (b.class === undefined) return errorReply(400, "class is required", "class");
      const s = consentState(b);
      if (!s.ok) return s.response;
      return answer(await a.setConsent(c.principal, b.integration, b.class, s.state));
    }),
  },

  { method: "POST", path: "/api/v1/audit/hold", roles: OWNER, summary: "legal hold: nothing is purged", handle: (c, a) => withBody(c, async (b) => unexpected(b, ["reason"]) ?? answer(await a.hold(c.principal, b.reason))) },
  { method: "POST", path: "/api/v1/audit/unhold", roles: OWNER, summary: "lift the legal hold", handle: (c, a) => withBody(c, async (b) => unexpected(b, []) ?? answer(await a.unhold(c.principal))) },
  { method: "POST", path: "/api/v1/audit/seal", roles: OWNER, summary: "seal the current epoch now", handle: (c, a) => withBody(c, (b) => unexpected(b, []) ?? answer(a.seal(c.principal))) },

  { method: "GET", path: "/api/v1/today", roles: ALL, quiet: true, summary: "what left today (since the gateway's local midnight) per integration, from the audit log", handle: (_c, a) => jsonReply(200, a.today()) },
  { method: "GET", path: "/api/v1/datamap", roles: READERS, summary: "device → classes → integrations → destinations, declared vs observed", handle: (_c, a) => jsonReply(200, a.dataMap()) },
  { method: "GET", path: "/api/v1/devices", roles: SETUP, summary: "configured devices and who is connected", handle: (_c, a) => jsonReply(200, { devices: a.devices() }) },
  {
    method: "POST", path: "/api/v1/devices", roles: SETUP, summary: "add a device: its generated password is shown once",
    handle: (c, a) => withBody(c, (b) => unexpected(b, ["id", "username"]) ?? answer(a.addDevice(c.principal, b.id, b.username), 201)),
  },
  { method: "DELETE", path: "/api/v1/devices/{id}", roles: SETUP, summary: "remove a device added over the API (its session closes)", handle: (c, a) => answer(a.removeDevice(c.principal, idOf(c))) },
]);
