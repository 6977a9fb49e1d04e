// The platform's own TTL, as track() takes it and as the guard holds its deadline to it: a backend's
// expireTime or ttl, the TTL of a message the guard sends itself (one revoke round after staleAt), and
// an extend that would pass it or RBM's 15 days. Pure: no server.
import { describe, expect, it } from 'vitest';
import { parseTrackInput, ValidationError } from '../../client/track-input.ts';
import { revokeRoundBudgetMs } from '../../workflows/contract.ts';
import { extendRefusal, initialGuard, step } from '../../workflows/lifecycle.ts';

const NOW = new Date('2026-11-22T10:00:00.000Z');
const base = { agentId: 'agent', messageId: 'm1', phone: '+14155550100', staleIn: '10m', fallbackText: 'code' };

function fieldErrors(input: Record<string, unknown>): { field: string; message: string }[] {
  try {
    parseTrackInput(input, NOW);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues;
    throw err;
  }
  throw new Error('accepted');
}

describe('track(): the platform TTL', () => {
  it('no TTL set: the guard knows there is none', () => {
    expect(parseTrackInput(base, NOW).platformExpireAt).toBeNull();
  });

  it('expireTime is taken as is; ttl counts from sentAt', () => {
    expect(parseTrackInput({ ...base, expireTime: '2026-11-22T10:20:00Z' }, NOW).platformExpireAt).toBe('2026-11-22T10:20:00.000Z');
    const sentAt = '2026-11-22T09:59:00.000Z';
    expect(parseTrackInput({ ...base, sentAt, ttl: '30m' }, NOW).platformExpireAt).toBe('2026-11-22T10:29:00.000Z');
  });

  it('bad TTLs are refused naming the field', () => {
    expect(fieldErrors({ ...base, expireTime: '2026-11-22T10:20:00Z', ttl: '1h' })[0]?.field).toBe('expireTime');
    expect(fieldErrors({ ...base, expireTime: 'tomorrow' })[0]).toMatchObject({ field: 'expireTime', message: expect.stringContaining('ISO-8601') });
    expect(fieldErrors({ ...base, ttl: '16d' })[0]).toMatchObject({ field: 'ttl', message: expect.stringContaining('15 days') });
    expect(fieldErrors({ ...base, ttl: 'soon' })[0]?.field).toBe('ttl');
  });

  it('a message the guard sends itself expires one full revoke round after staleAt, never before its own DELETE', () => {
    const m = parseTrackInput({ ...base, sendText: 'hello' }, NOW);
    expect(Date.parse(m.platformExpireAt!) - Date.parse(m.staleAt)).toBe(revokeRoundBudgetMs(m.policy));
    expect(revokeRoundBudgetMs(m.policy)).toBe(5 * 50_000); // 5 attempts × (30 s attempt + 20 s backoff)
    expect(fieldErrors({ ...base, sendText: 'hello', ttl: '1h' })[0]).toMatchObject({ field: 'ttl', message: expect.stringContaining('the guard sets the TTL') });
  });
});

describe('extend and the platform TTL', () => {
  const guardFor = (input: Record<string, unknown>) => {
    const message = parseTrackInput(input, NOW);
    return initialGuard('wf', { agentId: 'agent', messageId: 'm1', message }, NOW.toISOString());
  };

  it('up to one revoke round before the platform TTL is fine; closer, to or past it is refused, saying why', () => {
    const g = guardFor({ ...base, expireTime: '2026-11-22T10:30:00Z' });
    // The default policy's round: 5 attempts × (30 s + 20 s) = 250 s, so the guard's own DELETE comes first.
    expect(extendRefusal(g, '2026-11-22T10:25:50.000Z', NOW.toISOString())).toBeNull();
    expect(extendRefusal(g, '2026-11-22T10:29:00.000Z', NOW.toISOString())).toMatch(/less than one revoke round \(250 s\) before the message's platform TTL/);
    expect(extendRefusal(g, '2026-11-22T10:30:00.000Z', NOW.toISOString())).toMatch(/not before the message's platform TTL/);
  });

  it('a message the guard sent itself cannot be extended past its own platform TTL', () => {
    const g = step(guardFor({ ...base, sendText: 'hello' }), { type: 'SEND_RESULT', result: 'SENT' }, NOW.toISOString());
    expect(g.state).toBe('AWAITING_DELIVERY');
    const ttl = g.message!.platformExpireAt!;
    expect(extendRefusal(g, new Date(Date.parse(ttl) + 1000).toISOString(), NOW.toISOString())).toMatch(/platform TTL/);
  });

  it('more than 15 days after the send is refused', () => {
    const g = guardFor(base);
    expect(extendRefusal(g, '2026-12-07T10:00:01.000Z', NOW.toISOString())).toMatch(/more than 15 days after the send/);
    expect(extendRefusal(g, '2026-12-07T09:59:00.000Z', NOW.toISOString())).toBeNull();
  });
});
