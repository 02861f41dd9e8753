/**
 * The one way a test skips for a missing tool. Locally a skip is allowed (and counted as skipped in
 * the `npm test` totals); on CI (`CI=true`) the dependencies `.ci/run` installs must be there, so a
 * skip for one of them fails the test instead of hiding it.
 */

/** What `.ci/run` installs: a test missing one of these on CI is a failure, not a skip. */
export const CI_INSTALLS = Object.freeze(["mosquitto", "mosquitto-clients", "libmbedtls-dev", "cc", "chromium", "python3-paho-mqtt"] as const);
export type CiDependency = (typeof CI_INSTALLS)[number];

/** The part of mocha's `this` the helper needs. */
interface Skippable {
  skip(): never;
}

/** True on CI: `CI` set to anything but "" / "0" / "false" (GitHub Actions, GitLab and .ci/run set "true"). */
export function onCi(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/**
 * Call in `before`/`it` with `missing` = why the dependency is absent (undefined when present).
 * Present: returns. Absent locally: prints why and how to install, then skips. Absent on CI: throws.
 */
export function skipUnlessAvailable(ctx: Skippable, what: CiDependency, missing: string | undefined, installHint: string, env = process.env): void {
  if (missing === undefined) return;
  if (onCi(env)) throw new Error(`CI=true and ${what} is missing (${missing}); .ci/run installs it: ${installHint}`);
  console.log(`      skipped: ${missing} (${installHint})`);
  ctx.skip();
}
