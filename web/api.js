// Every call the dashboard makes to the gateway's JSON API, and nothing else talks to the network.
// Each function resolves to { ok, status, absent, data, error }: `absent` is true when the gateway
// answers 404/501 for the route itself (this firmware does not have it yet), so a page can say so.
// Credentials: a break-glass owner token (Authorization: Bearer, kept in this page's memory only) or
// the session cookie from POST /api/v1/login, with its CSRF token sent on state-changing requests.

let token = null; // break-glass bearer token, never stored
let csrf = null; // CSRF token of the cookie session
let session = false; // a cookie session is open (login, or GET /api/v1/me answered)

async function call(method, path, body, parse = "json") {
  const headers = { accept: parse === "json" ? "application/json" : "*/*" };
  if (token) headers.authorization = "Bearer " + token;
  if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, absent: false, data: null, error: "the gateway did not answer (" + e.message + ")" };
  }
  const text = await res.text();
  let data = null;
  if (res.ok && parse === "json") {
    try { data = text ? JSON.parse(text) : null; } catch { return { ok: false, status: res.status, absent: false, data: null, error: "the answer was not JSON" }; }
  } else if (res.ok && parse === "ndjson") {
    data = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } else if (res.ok) data = text;
  let error = null;
  if (!res.ok) {
    try { const e = JSON.parse(text); error = e.error + (e.field ? " (" + e.field + ")" : ""); } catch { error = text.trim() || res.statusText; }
  }
  const absent = res.status === 404 && /^not found$/.test(error || "") || res.status === 501;
  return { ok: res.ok, status: res.status, absent, data, error };
}

const q = (o) => {
  const p = Object.entries(o).filter(([, v]) => v !== undefined && v !== "" && v !== null).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v));
  return p.length ? "?" + p.join("&") : "";
};
const id = encodeURIComponent;

/** True when a credential (token or session) is held. */
export const signedIn = () => token !== null || session;

/** Break-glass: checks the owner token with GET /api/v1/status; keeps it only if it works. */
export async function loginToken(t) {
  token = t.trim();
  const r = await call("GET", "/api/v1/status");
  if (!r.ok) token = null;
  return r.ok ? { ...r, data: { account: "owner-token", role: "owner", via: "token" } } : r;
}
/** POST /api/v1/login {account, password, totp} → {csrf, role, account, expiresAt} and a cookie. */
export async function loginPassword(account, password, totp) {
  const r = await call("POST", "/api/v1/login", { account, password, totp });
  if (r.ok && r.data) (csrf = r.data.csrf || null), (session = true);
  return r;
}
export async function logout() {
  const r = session ? await call("POST", "/api/v1/logout") : { ok: true };
  token = null;
  csrf = null;
  session = false;
  return r;
}
/** GET /api/v1/me → {account, role, csrf?}: who holds the credential (or the cookie session). */
export async function me() {
  const r = await call("GET", "/api/v1/me");
  if (r.ok && r.data && !token) (session = true), r.data.csrf && (csrf = r.data.csrf);
  return r;
}
/** POST /api/v1/setup {code, account, password} → {otpauthUri, recoveryCodes}. */
export const setup = (code, account, password) => call("POST", "/api/v1/setup", { code, account, password });

/** GET /api/v1/status → {name, integrations:[{id,state,version}], outbound:{"<integration>/<destination>":{state,sent,queued,payloadBytes,dropped:{why:n}}}, audit:{records,nextSeq,hold,...}, certificateFingerprint}. */
export const status = () => call("GET", "/api/v1/status");
/** GET /api/v1/audit?since=&limit=&device=&integration=&kind= → NDJSON records. */
export const audit = (f = {}) => call("GET", "/api/v1/audit" + q(f), undefined, "ndjson");
/** GET /api/v1/audit/export → the self-verifying JSONL, as text. */
export const auditExport = () => call("GET", "/api/v1/audit/export", undefined, "text");
/** GET /api/v1/audit/checkpoint → {seq, epoch, chain, time, timeSet, mac}: the last seal. */
export const checkpoint = () => call("GET", "/api/v1/audit/checkpoint");
export const hold = () => call("POST", "/api/v1/audit/hold");
export const unhold = () => call("POST", "/api/v1/audit/unhold");
export const seal = () => call("POST", "/api/v1/audit/seal");

/** GET /api/v1/integrations → [{id, vendor, state, version, consent?}] (or {integrations:[...]}). */
export const integrations = () => call("GET", "/api/v1/integrations");
export const quarantine = (i) => call("POST", "/api/v1/integrations/" + id(i) + "/quarantine");
export const release = (i) => call("POST", "/api/v1/integrations/" + id(i) + "/release");
/** GET /api/v1/contracts → [contract (format 1)] (or {contracts:[...]}). */
export const contracts = () => call("GET", "/api/v1/contracts");
/** GET /api/v1/contracts/pending → [{id, version, from, diff:[text]}] (or {pending:[...]}). */
export const pendingContracts = () => call("GET", "/api/v1/contracts/pending");
export const approve = (c) => call("POST", "/api/v1/contracts/" + id(c) + "/approve");
export const reject = (c) => call("POST", "/api/v1/contracts/" + id(c) + "/reject");
/** GET /api/v1/consent → [{integration, class, grant, time?, by?}] (or {consent:[...]}). */
export const consent = () => call("GET", "/api/v1/consent");
/** POST /api/v1/consent {integration, class, grant}. */
export const setConsent = (integration, cls, grant) => call("POST", "/api/v1/consent", { integration, class: cls, grant });
/** GET /api/v1/datamap → [{device, class, integration, destination, declared, observed?, denied?}] (or {flows:[...]}). */
export const datamap = () => call("GET", "/api/v1/datamap");
/** GET /api/v1/devices → [{id, groups?, connected?, disabled?}] (or {devices:[...]}). */
export const devices = () => call("GET", "/api/v1/devices");
/** GET /api/v1/accounts → [{account, role, mfa?, locked?}] (or {accounts:[...]}). */
export const accounts = () => call("GET", "/api/v1/accounts");
/** GET /api/v1/incidents → [{id, opened, state, summary}] (or {incidents:[...]}); absent until the incident issue lands. */
export const incidents = () => call("GET", "/api/v1/incidents");

/** A list from an answer that is a list or an object holding one under `key`. */
export const list = (data, key) => (Array.isArray(data) ? data : data && Array.isArray(data[key]) ? data[key] : []);
