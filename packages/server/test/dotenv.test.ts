import { describe, expect, it } from 'vitest';
import { parseDotenv, wranglerDevVars } from '../scripts/dotenv.mjs';

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

// Without .dev.vars, wrangler dev (4.x) reads .env and .env.local and expands them; the
// development token must be signed with what it reads there.
describe('the files wrangler dev reads its variables from', () => {
  const files = (texts: Record<string, string>) => (name: string) => texts[name];

  it('takes .dev.vars as it is, $ and all, and then nothing else', () => {
    const read = files({ '.dev.vars': 'EDGELOG_JWT_SECRET=pa$word', '.env': 'EDGELOG_JWT_SECRET=other' });
    expect(wranglerDevVars(read)).toEqual({ vars: { EDGELOG_JWT_SECRET: 'pa$word' }, source: '.dev.vars' });
  });

  it('falls back to .env, then .env.local over it, expanding references as dotenv-expand does', () => {
    const env = [
      'BASE=s3cret',
      'SUFFIX=one',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a dotenv reference, not a template
      'EDGELOG_JWT_SECRET=${BASE}-$SUFFIX',
      'LITERAL=a\\$b',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a dotenv reference, not a template
      'DEFAULTED=${NONE:-dflt}',
      'LATER=$AFTER',
      'AFTER=x',
    ];
    const read = files({ '.env': env.join('\n'), '.env.local': 'SUFFIX=two' });
    expect(wranglerDevVars(read)).toEqual({
      vars: {
        BASE: 's3cret',
        SUFFIX: 'two',
        EDGELOG_JWT_SECRET: 's3cret-two',
        LITERAL: 'a$b',
        DEFAULTED: 'dflt',
        LATER: '',
        AFTER: 'x',
      },
      source: '.env, .env.local',
    });
  });

  it('reads no .env when told not to, and nothing when there are no files', () => {
    const read = files({ '.env': 'EDGELOG_JWT_SECRET=x' });
    expect(wranglerDevVars(read, { CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: 'false' })).toEqual({
      vars: {},
      source: undefined,
    });
    expect(wranglerDevVars(files({}))).toEqual({ vars: {}, source: undefined });
  });
});
