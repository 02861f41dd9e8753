/** The closed set of error codes the core reports (littlefs style: one table, no TS enum). */

export const ErrorCode = Object.freeze({
  /** A flash rule was broken: programming a bit from 0 to 1, misalignment, or out of range. */
  FlashRule: "flash-rule",
  /** The (simulated) power failed during a flash operation. */
  PowerCut: "power-cut",
  /** A bad option or argument from the caller (a programmer error). */
  BadOption: "bad-option",
  /** A configured limit was reached; the core rejects rather than grows. */
  Limit: "limit",
  /** Stored data failed its integrity check. */
  Corrupt: "corrupt",
  /** Input from outside (a packet, a file) is malformed. */
  Malformed: "malformed",
} as const);

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error carrying one of the {@link ErrorCode}s. */
export class PortcullisError extends Error {
  /**
   * A field, not `this.name = …`: on the firmware Error.prototype is frozen, so assigning `name` throws
   * ("set name: not writable") while defining an own property works (found by the port contract
   * suites running in the lin build).
   */
  override readonly name: string = "PortcullisError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
