/** The policy engine's decision, as the gateway consumes it. A deny is a decision, not an exception. */

export type Verdict = "allow" | "minimize" | "deny";

/** One message from a home device, as the broker received it. */
export interface FlowInput {
  readonly device: string;
  readonly topic: string;
  readonly payload: Uint8Array;
}

/** The engine's answer for one integration (or for none, when no contract matched). */
export interface FlowDecision {
  readonly verdict: Verdict;
  /** The integration this decision is about; null when no contract claims the message. */
  readonly integration: string | null;
  /** The id of the contract rule that matched; `default-deny` (DEFAULT_DENY_RULE) when no contract claims the message. */
  readonly rule: string | null;
  /** A reason code (see the engine's closed set). */
  readonly reason: string;
  /** For allow and minimize: the bytes that may leave (only contracted fields, pseudonyms applied). */
  readonly payload?: Uint8Array;
  /** For allow and minimize: the topic on the vendor side. */
  readonly vendorTopic?: string;
  /** For allow and minimize: the id of the contract destination the payload goes to. */
  readonly destination?: string;
  /** How many fields of the input were dropped. */
  readonly fieldsDropped: number;
  /**
   * How many fields of the input no contract declares at all for this device and topic (no matching
   * flow of any integration names them, whatever the consent): the over-collection the
   * `undeclared-fields` alarm counts. The same for every decision on one message; 0 for a raw flow,
   * for JSON that does not parse, when no contract claims the message, and when no decision got as
   * far as minimization (all denied before it: quarantined, blocked, pending review, too large).
   */
  readonly fieldsUndeclared: number;
  /** Data classes of the fields that leave. */
  readonly classes: readonly string[];
}
