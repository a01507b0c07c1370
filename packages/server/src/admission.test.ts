import { describe, expect, it } from 'vitest';
import {
  Admission,
  addressKey,
  admissionFromEnv,
  admissionPolicy,
  defaultAdmission,
  TokenBucket,
} from './admission.ts';

describe('token bucket', () => {
  it('admits a burst, then refuses with the wait until enough tokens are back', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(1, 0), b.take(1, 0), b.take(1, 0)]).toEqual([0, 0, 0]);
    expect(b.take(1, 0)).toBe(500);
    expect(b.take(1, 250)).toBe(250);
    expect(b.take(1, 500)).toBe(0);
    expect(b.idle(500)).toBe(false);
    expect(b.idle(2_000)).toBe(true);
  });

  it('charges a cost above the burst as one full burst, so one large request can always pass', () => {
    const b = new TokenBucket(10, 100, 0);
    expect(b.take(1_000, 0)).toBe(0);
    expect(b.take(1, 0)).toBe(100);
  });
});

describe('admission per store', () => {
  it('slows the store over its rate and keeps serving the others', () => {
    let now = 0;
    const gate = new Admission(
      admissionPolicy({
        requestsPerSecond: 1,
        requestBurst: 2,
        writeBytesPerSecond: 100,
        writeBurstBytes: 1_000,
      }),
      () => now,
    );
    expect(gate.admit('a', 0)).toEqual({ ok: true });
    expect(gate.admit('a', 0)).toEqual({ ok: true });
    expect(gate.admit('a', 0)).toEqual({ ok: false, retryAfterMs: 1_000, scope: 'requests' });
    expect(gate.admit('b', 0)).toEqual({ ok: true });
    now = 1_000;
    expect(gate.admit('a', 1_000)).toEqual({ ok: true });
    now = 2_000;
    expect(gate.admit('a', 500)).toEqual({ ok: false, retryAfterMs: 4_000, scope: 'write bytes' });
    expect(gate.admit('b', 900)).toEqual({ ok: true });
  });

  it('reads its policy from EDGELOG_ADMISSION and refuses a bad one', () => {
    expect(admissionFromEnv(undefined)).toEqual(defaultAdmission);
    expect(admissionFromEnv('off')).toBe(false);
    expect(admissionFromEnv('{"requestsPerSecond":5}')).toEqual({
      ...defaultAdmission,
      requestsPerSecond: 5,
    });
    expect(() => admissionFromEnv('{"requestsPerSecond":-1}')).toThrow();
  });
});

describe('anonymous admission per client address', () => {
  it('keys IPv4 addresses as they are and IPv6 ones by their /64', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2::ff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });

  it('refuses an address over its burst, serves other addresses and leaves the stores alone', () => {
    let now = 0;
    const gate = new Admission(
      admissionPolicy({ requestBurst: 1, anonymousRequestsPerSecond: 1, anonymousRequestBurst: 2 }),
      () => now,
    );
    expect(gate.admitAnonymous('a')).toEqual({ ok: true });
    expect(gate.anonymousLeft('a')).toBe(true);
    expect(gate.admitAnonymous('a')).toEqual({ ok: true });
    expect(gate.anonymousLeft('a')).toBe(false);
    expect(gate.admitAnonymous('a')).toEqual({ ok: false, retryAfterMs: 1_000, scope: 'anonymous requests' });
    expect(gate.anonymousLeft('b')).toBe(true);
    expect(gate.admitAnonymous('b')).toEqual({ ok: true });
    expect(gate.admit('a', 0)).toEqual({ ok: true });
    now = 1_000;
    expect(gate.admitAnonymous('a')).toEqual({ ok: true });
  });
});
