/** The policy engine's closed set of reason codes and its named limits. */
import { DEFAULT_CONTRACT_LIMITS, type ContractLimits } from "./contract.js";

/** Reason codes of {@link FlowDecision}s (DESIGN.md "Policy engine" explains each). */
export const Reason = Object.freeze({
  /** The payload leaves unchanged (re-serialized). */
  Ok: "ok",
  /** Fields were dropped or pseudonymized. */
  Minimized: "minimized",
  NoContract: "no-contract",
  ContractInvalid: "contract-invalid",
  /** The integration's contract was rejected at load (its text, or the board's integrations limit): see `integrations`. */
  Blocked: "blocked",
  /** After a reboot the loaded text differs from the approved version and the old text is unknown. */
  PendingReview: "pending-review",
  Quarantined: "quarantined",
  PayloadTooLarge: "payload-too-large",
  NotJson: "not-json",
  NothingAllowed: "nothing-allowed",
  ConsentMissing: "consent-missing",
  ConsentRefused: "consent-refused",
  ConsentWithdrawn: "consent-withdrawn",
  RateLimited: "rate-limited",
  BadVendorTopic: "bad-vendor-topic",
  /** The KeyStore or the random source failed while making a pseudonym. */
  KeyUnavailable: "key-unavailable",
  /** An unexpected fault inside the engine (a bug): denied, never thrown. */
  EngineFault: "engine-fault",
} as const);
export type Reason = (typeof Reason)[keyof typeof Reason];

/**
 * The rule id of the default deny (no contract claims the message): a stable name, so the audit log,
 * its summaries and the admin API can group and filter on it like any contract rule. Contract rule
 * ids only ever appear with an integration; this one always with integration null.
 */
export const DEFAULT_DENY_RULE = "default-deny";

/** Every limit of the engine; options may override any of them. */
export interface PolicyLimits extends ContractLimits {
  /** Integrations loaded at once. */
  readonly integrations: number;
  /** Largest payload the engine inspects; bigger ones are denied. */
  readonly payloadBytes: number;
  /** Devices the data map keeps counters for; beyond it, unknown devices count under "*other*". */
  readonly mapDevices: number;
}

export const DEFAULT_POLICY_LIMITS: PolicyLimits = Object.freeze({
  ...DEFAULT_CONTRACT_LIMITS,
  integrations: 32,
  payloadBytes: 4096,
  mapDevices: 256,
});
