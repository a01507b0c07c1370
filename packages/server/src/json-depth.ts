import { validationError } from '@edgelog/core';

/**
 * Deepest nesting of arrays and objects accepted in a request body or WebSocket message.
 * Parsing deeper JSON is fine, but recursive code after it (stringify, schema checks) would
 * overflow the stack and answer 500; real event data is nowhere near this deep.
 */
export const MAX_JSON_DEPTH = 100;

const OPEN_BRACE = 123;
const OPEN_BRACKET = 91;
const CLOSE_BRACE = 125;
const CLOSE_BRACKET = 93;
const QUOTE = 34;
const BACKSLASH = 92;

/**
 * The deepest nesting in a JSON text, counted on the raw text (strings skipped); stops past
 * `limit`. Strings (most of an event's text) are jumped over with native `indexOf` rather
 * than read character by character.
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return deepest;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return deepest;
}

/** The index of the quote closing the string opened at `open`, or -1 when it is not closed. */
function stringEnd(text: string, open: number): number {
  let at = text.indexOf('"', open + 1);
  while (at > 0) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
    at = text.indexOf('"', at + 1);
  }
  return -1;
}

/** `JSON.parse`, refusing nesting deeper than `MAX_JSON_DEPTH` with a 400 Validation. */
export function parseJsonBounded(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH)
    throw validationError([{ path: '', message: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }]);
  return JSON.parse(text) as unknown;
}
