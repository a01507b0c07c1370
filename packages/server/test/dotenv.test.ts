import { describe, expect, it } from 'vitest';
import { parseDotenv } from '../scripts/dotenv.mjs';

// `npm run token` signs with the secret it reads from .dev.vars; wrangler dev verifies with the
// one dotenv reads. Any line they read differently makes every development token a 401.
describe('.dev.vars is read as wrangler reads it', () => {
  it('cuts an unquoted value at its comment, keeps quoted ones whole, and takes `export`', () => {
    const text = [
      '# local secrets',
      'EDGELOG_JWT_SECRET=s3cret # local',
      'EDGELOG_BENCH=1',
      "SINGLE='a # b'  # comment",
      'DOUBLE="line\\nnext" # comment',
      'export EXPORTED = spaced value  ',
      'EMPTY=',
      'CRLF=yes\r',
      'not a variable',
    ].join('\n');
    expect(parseDotenv(text)).toEqual({
      EDGELOG_JWT_SECRET: 's3cret',
      EDGELOG_BENCH: '1',
      SINGLE: 'a # b',
      DOUBLE: 'line\nnext',
      EXPORTED: 'spaced value',
      EMPTY: '',
      CRLF: 'yes',
    });
  });

  it('reads a quoted value over several lines', () => {
    expect(parseDotenv('KEY="one\ntwo"\nNEXT=3')).toEqual({ KEY: 'one\ntwo', NEXT: '3' });
  });
});
