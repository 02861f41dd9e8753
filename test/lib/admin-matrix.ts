/**
 * The role × route × method matrix over every route an AdminApi serves: no credential, wrong
 * credentials (owner token, session token, cookie), the break-glass token, and each role by bearer
 * and by cookie (with its CSRF token). A refusal is 401/403; anything else is an allow. Returns the
 * unexpected answers (an allow the route's roles do not grant, or a refusal they do), so a test can
 * show them all.
 */
import type { AdminApi, AdminRequest } from "../../src/admin/api.js";
import { ROLES, type Role } from "../../src/admin/routes.js";
import { SESSION_COOKIE } from "../../src/admin/sessions.js";

export interface MatrixResult {
  readonly checked: number;
  readonly unexpected: string[];
}

export async function roleMatrix(api: AdminApi, tick: (ms: number) => void, ownerToken: string, accounts: Readonly<Record<Role, string>>): Promise<MatrixResult> {
  const auth = api.auth;
  if (!auth) throw new Error("the API has no accounts");
  const unexpected: string[] = [];
  let checked = 0;
  for (const route of api.routes) {
    const target = route.path.replace(/\{[^}]+\}/g, "nobody");
    const mine = route.roles as readonly Role[];
    // Each credential is made just before its request (a logout-all must not end the next one's session).
    const creds: [string, () => Partial<AdminRequest>, boolean][] = [
      ["no credential", () => ({}), false],
      ["wrong owner token", () => ({ authorization: "Bearer pct_wrong" }), false],
      ["wrong session token", () => ({ authorization: "Bearer pcs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }), false],
      ["forged cookie", () => ({ headers: { cookie: `${SESSION_COOKIE}=pcs_forged` } }), false],
      ["malformed authorization", () => ({ authorization: `Basic ${ownerToken}` }), false],
      ["break-glass token", () => ({ authorization: `Bearer ${ownerToken}` }), mine.includes("owner")],
    ];
    for (const role of ROLES) {
      creds.push([`${role} bearer`, () => ({ authorization: `Bearer ${auth.sessions.create(accounts[role], role).token}` }), mine.includes(role)]);
      creds.push([`${role} cookie`, () => {
        const { token, session } = auth.sessions.create(accounts[role], role);
        return { headers: { cookie: `${SESSION_COOKIE}=${token}`, "x-csrf-token": session.csrf } };
      }, mine.includes(role)]);
    }
    for (const [label, make, allowed] of creds) {
      tick(61_000); // past the bad-token throttle window, so each request is judged on its credential
      const cred = make();
      const body = route.method === "GET" ? {} : { body: "{}", headers: { ...cred.headers, "content-type": "application/json" } };
      const r = await api.handle({ method: route.method, target, remote: `10.2.${checked % 250}.1`, ...cred, ...body });
      checked++;
      const refused = r.status === 401 || r.status === 403;
      // Public routes check their own input: a 401 there is "wrong code/password", not a missing credential.
      const ok = route.public ? r.status !== 403 : allowed ? !refused : refused;
      if (!ok) unexpected.push(`${route.method} ${route.path} with ${label}: ${r.status} ${r.body.join("").trim()}`);
    }
  }
  return { checked, unexpected };
}
