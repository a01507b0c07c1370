#!/usr/bin/env node
// Prints an HS256 JWT the local server accepts.
// npm run token -- --store <store> --role <reader|writer|admin> [--streams a-,b-] [--sub alice] [--ttl 86400]
import { createHmac } from 'node:crypto';
import { parseArgs } from 'node:util';
import { devSecret } from '../packages/server/scripts/dev-secret.mjs';

const { values } = parseArgs({
  options: {
    store: { type: 'string' },
    role: { type: 'string', default: 'writer' },
    streams: { type: 'string' },
    sub: { type: 'string' },
    ttl: { type: 'string', default: '86400' },
    secret: { type: 'string' },
  },
});

const fail = (message) => {
  process.stderr.write(
    `${message}\nusage: npm run token -- --store <store> --role <reader|writer|admin> [--streams a-,b-] [--sub who] [--ttl seconds]\n`,
  );
  process.exit(2);
};
if (!values.store || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(values.store))
  fail('--store is required: 1-64 of a-z, 0-9, _ and -');
if (!['reader', 'writer', 'admin'].includes(values.role)) fail('--role must be reader, writer or admin');
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0) fail('--ttl must be a positive number of seconds');

const now = Math.floor(Date.now() / 1000);
const claims = { store: values.store, role: values.role, iat: now, exp: now + ttl };
if (values.streams) claims.streams = values.streams.split(',').filter((s) => s !== '');
if (values.sub) claims.sub = values.sub;

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
const { secret, source } = values.secret ? { secret: values.secret, source: '--secret' } : devSecret();
const signature = createHmac('sha256', secret).update(unsigned).digest('base64url');
process.stderr.write(`signed with the secret from ${source}; claims ${JSON.stringify(claims)}\n`);
process.stdout.write(`${unsigned}.${signature}\n`);
