/**
 * Build-time configuration from the manifest's `config.portcullis` section (mc/config), checked once at
 * boot so a bad build fails with a clear message instead of misbehaving later.
 */
import config from "mc/config";
import type { SerialOptions } from "portcullis/moddable/console";
import { profileByName, type BoardProfile } from "portcullis/profiles";

export interface FirmwareConfig {
  /** lin only: the directory (ending in "/") holding audit.flash and keys/. */
  readonly dataDir: string;
  readonly console: SerialOptions;
  /** SNTP server asked at boot; "" disables SNTP (the clock then stays "not set"). */
  readonly sntp: string;
  readonly dns: readonly string[];
  /** The gateway's name: TLS certificate common name and console banner. */
  readonly name: string;
  /** Device-side MQTT port. */
  readonly mqttPort: number;
  /** HTTPS port for the audit pull. */
  readonly httpsPort: number;
  /**
   * The board profile this build was made for (`config.portcullis.profile`, set per platform in
   * manifest.json beside the matching XS creation values; src/profiles.ts).
   */
  readonly profile: BoardProfile;
}

/** @throws Error naming the first missing or malformed entry. */
export function readConfig(): FirmwareConfig {
  const c = (config as unknown as { portcullis?: Partial<FirmwareConfig> }).portcullis;
  if (c === undefined) throw new Error("manifest config.portcullis missing");
  const need = <K extends keyof FirmwareConfig>(key: K, ok: (v: unknown) => boolean): FirmwareConfig[K] => {
    const value = c[key];
    if (!ok(value)) throw new Error(`manifest config.portcullis.${key} missing or malformed`);
    return value as FirmwareConfig[K];
  };
  const port = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;
  return {
    dataDir: need("dataDir", (v) => typeof v === "string" && v.endsWith("/")),
    console: need("console", (v) => typeof v === "object" && v !== null && Number.isInteger((v as { baud?: unknown }).baud)),
    sntp: need("sntp", (v) => typeof v === "string"),
    dns: need("dns", (v) => Array.isArray(v) && v.every((s) => typeof s === "string")),
    name: need("name", (v) => typeof v === "string" && /^[A-Za-z0-9.-]{1,63}$/.test(v as string)),
    mqttPort: need("mqttPort", port),
    httpsPort: need("httpsPort", port),
    profile: profileOf(c),
  };
}

/** @throws Error when the build names no profile or one src/profiles.ts does not define. */
function profileOf(c: { profile?: unknown }): BoardProfile {
  if (typeof c.profile !== "string") throw new Error("manifest config.portcullis.profile missing or malformed");
  return profileByName(c.profile);
}
