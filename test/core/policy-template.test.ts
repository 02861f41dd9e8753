/** Topic templates (src/policy/decide.ts expandTemplate): the scan gives what the grammar's RegExp gives. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { expandTemplate } from "../../src/policy/decide.js";

const reference = (template: string, value: (name: string) => string): string => template.replace(/\{([a-z-]+)\}/g, (_m, name: string) => value(name));

describe("topic templates", () => {
  it("expands the documented placeholders and keeps other text", () => {
    const v = (n: string): string => `<${n}>`;
    assert.equal(expandTemplate("tc/{device-pseudonym}/state", v), "tc/<device-pseudonym>/state");
    assert.equal(expandTemplate("{integration}/{flow}/{device}", v), "<integration>/<flow>/<device>");
    assert.equal(expandTemplate("a/{Upper}/{}/{x", v), "a/{Upper}/{}/{x");
    assert.equal(expandTemplate("{{a}}", v), "{<a>}");
    assert.equal(expandTemplate("", v), "");
  });

  it("agrees with the RegExp of the template grammar on any text of braces, letters and slashes", () => {
    const piece = fc.constantFrom("{", "}", "/", "a", "z", "-", "A", "device", "{device}", "{a-b}", "0");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (parts) => {
        const template = parts.join("");
        const value = (n: string): string => `[${n.length}]`;
        assert.equal(expandTemplate(template, value), reference(template, value));
      }),
      { numRuns: 2000 },
    );
  });
});
