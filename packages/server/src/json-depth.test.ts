import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonDepth, MAX_JSON_DEPTH, parseJsonBounded } from './json-depth.ts';

describe('JSON nesting depth', () => {
  it('counts arrays and objects, not brackets inside strings', () => {
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('{"a":[1,{"b":[]}]}')).toBe(4);
    expect(jsonDepth('{"a":"[[[[{{{{","b":"\\"[[["}')).toBe(1);
  });

  it('refuses JSON nested deeper than the limit with a Validation error, and parses the rest', () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(() => parseJsonBounded(deep)).toThrow(expect.objectContaining({ code: 'Validation' }));
    expect(parseJsonBounded(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`)).toBeInstanceOf(
      Array,
    );
  });
});

/** The plain scanner, one character at a time: the reference for the one that skips strings. */
function slowDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') deepest = Math.max(deepest, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return deepest;
}

describe('jsonDepth skips strings natively', () => {
  it('agrees with a plain scanner on any JSON, escapes and brackets in strings included', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string(), (value, s) => {
        const text = JSON.stringify([value, s, { [s]: `\\${s}"[{`, k: [s] }]);
        expect(jsonDepth(text, 1000)).toBe(slowDepth(text));
      }),
      { numRuns: 2000 },
    );
    for (const text of ['"\\\\"', '["\\\\\\"[["]', '[{"a\\\\":"\\\\\\\\"}]', '["unclosed', '"'])
      expect(jsonDepth(text, 1000)).toBe(slowDepth(text));
  });
});
