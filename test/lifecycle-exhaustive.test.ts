// The state machine checked exhaustively against a small model of the platform's truth: every
// interleaving of platform moves (delivery, TTL revoke), RBM events (delivered, duplicated, lost, in
// any order), activity answers (including lost ones and 404s for messages that are gone), timers,
// cancels and extends — up to the budgets below — driven through the pure step()/nextAction(). In
// every end state the promise must hold: delivered XOR exactly one SMS, or the outcome says why not.
import { describe, expect, it } from 'vitest';
import { SMS_OUTCOMES, type GuardEventType, type GuardInput, type Outcome, type TrackedMessage } from '../workflows/contract.ts';
import { initialGuard, nextAction, outcomeOf, step, type Guard, type LifecycleEvent } from '../workflows/lifecycle.ts';

type Truth = 'queued' | 'delivered' | 'gone' | 'never-created';
interface World {
  guard: Guard;
  truth: Truth;
  /** SMS the provider really sent. */
  sms: number;
  /** RBM events emitted and not yet handed to the guard. */
  pending: { type: GuardEventType; id: string }[];
  emitted: number;
  deliveredEventLost: boolean;
  budget: { faults: number; cancel: number; extend: number; ttlFailed: number };
  clock: number;
  done: boolean;
}
interface Scenario {
  name: string;
  provider: 'twilio' | 'http';
  onUnknown: 'fallback' | 'no-fallback';
  platformTtl: boolean;
  guardSends: boolean;
  fallback: boolean;
  faults: number;
}

const T0 = Date.parse('2026-11-22T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function message(s: Scenario): TrackedMessage {
  return {
    agentId: 'agent',
    messageId: 'm1',
    phone: '+14155550100',
    staleAt: iso(T0 + 60_000),
    sentAt: iso(T0),
    platformExpireAt: s.platformTtl ? iso(T0 + 120_000) : null,
    trafficType: s.onUnknown === 'fallback' ? 'AUTHENTICATION' : 'PROMOTION',
    fallback: s.fallback ? { channel: 'sms', text: 'code 1' } : null,
    send: s.guardSends ? { text: 'hello' } : null,
    policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 2, onUnknown: s.onUnknown, lingerMs: 5000 },
  };
}

/** Every move that can happen next, each as the world after it. */
function moves(w: World, s: Scenario, input: GuardInput): World[] {
  if (w.done) return [];
  const out: World[] = [];
  const at = iso(w.clock);
  const next = (patch: Partial<World>, event?: LifecycleEvent, dt = 1): World => {
    const clock = w.clock + dt;
    const guard = event ? step(w.guard, event, iso(clock)) : w.guard;
    return { ...w, ...patch, guard, clock };
  };
  const fault = w.budget.faults > 0 ? { budget: { ...w.budget, faults: w.budget.faults - 1 } } : null;

  // The platform: delivers a queued message (the DELIVERED event follows), or its TTL revokes it.
  const emit = (type: GuardEventType) => ({ pending: [...w.pending, { type, id: `e${w.emitted}` }], emitted: w.emitted + 1 });
  if (w.truth === 'queued') {
    out.push(next({ truth: 'delivered', ...emit('DELIVERED') }));
    if (s.platformTtl) out.push(next({ truth: 'gone', ...emit('TTL_EXPIRATION_REVOKED') }));
    if (s.platformTtl && w.budget.ttlFailed > 0) out.push(next({ ...emit('TTL_EXPIRATION_REVOKE_FAILED'), budget: { ...w.budget, ttlFailed: 0 } }));
  }
  // Events reach the guard in any order; one may be duplicated (delivered, and again later) or lost.
  w.pending.forEach((e, i) => {
    const rest = w.pending.filter((_, j) => j !== i);
    const ev: LifecycleEvent = { type: 'RBM_EVENT', eventType: e.type, eventId: e.id };
    out.push(next({ pending: rest }, ev));
    if (fault) {
      out.push(next({ ...fault }, ev)); // a duplicate follows
      out.push(next({ pending: rest, ...fault, deliveredEventLost: w.deliveredEventLost || e.type === 'DELIVERED' }));
    }
  });
  // The backend.
  if (w.budget.cancel > 0) out.push(next({ budget: { ...w.budget, cancel: 0 } }, { type: 'CANCEL', reason: 'test' }));
  if (w.budget.extend > 0 && w.guard.staleAt) {
    out.push(next({ budget: { ...w.budget, extend: 0 } }, { type: 'EXTEND', staleAt: iso(Date.parse(w.guard.staleAt) + 30_000) }));
  }

  // The guard's own next step.
  const action = nextAction(w.guard, input, at);
  switch (action.kind) {
    case 'wait-track':
      out.push(next({}, { type: 'ORPHAN_WINDOW_ELAPSED' }));
      break;
    case 'wait-stale':
      out.push(next({}, { type: 'STALE' }, Math.max(1, Date.parse(action.until) - w.clock)));
      break;
    case 'wait-grace':
      out.push(next({}, { type: 'GRACE_ELAPSED' }, 1000));
      break;
    case 'wait-retry':
      out.push(next({}, { type: 'RETRY_DUE' }, 1000));
      break;
    case 'linger':
    case 'done':
      out.push({ ...w, done: true });
      break;
    case 'send': {
      out.push(next({ truth: 'queued' }, { type: 'SEND_RESULT', result: 'SENT' }));
      if (fault) {
        out.push(next({ truth: 'queued', ...fault }, { type: 'SEND_RESULT', result: 'AMBIGUOUS' })); // landed, answer lost
        out.push(next({ truth: 'never-created', ...fault }, { type: 'SEND_RESULT', result: 'AMBIGUOUS' })); // five 503s
        out.push(next({ truth: 'never-created', ...fault }, { type: 'SEND_RESULT', result: 'NO_RCS' }));
      }
      break;
    }
    case 'revoke': {
      const ev = (result: 'REVOKED' | 'ALREADY_DELIVERED' | 'AMBIGUOUS' | 'CONFIG_ERROR', attempt = 1): LifecycleEvent => ({ type: 'REVOKE_RESULT', result, attempt });
      if (w.truth === 'queued') {
        out.push(next({ truth: 'gone' }, ev('REVOKED')));
        if (fault) {
          out.push(next({ truth: 'gone', ...fault }, ev('ALREADY_DELIVERED', 2))); // 200 lost, the retry gets 404
          out.push(next({ truth: 'gone', ...fault }, ev('AMBIGUOUS'))); // landed, every answer lost
          out.push(next({ ...fault }, ev('AMBIGUOUS'))); // hung: never landed
          out.push(next({ truth: 'gone', ...fault }, ev('REVOKED', 2))); // 5xx, then 200
        }
      } else {
        // Delivered, revoked, expired or never created: RBM answers 404 (the pessimistic default).
        out.push(next({}, ev('ALREADY_DELIVERED')));
        if (fault) out.push(next({ ...fault }, ev('AMBIGUOUS')));
      }
      if (fault) out.push(next({ ...fault }, ev('CONFIG_ERROR')));
      break;
    }
    case 'fallback': {
      const fb = (result: 'ACCEPTED' | 'FOUND' | 'REFUSED' | 'RETRYABLE' | 'LOOKUP_FAILED', maybeSent?: boolean): LifecycleEvent => ({
        type: 'FALLBACK_RESULT',
        result,
        maybeSent,
        startedAt: at,
      });
      // The HTTP provider deduplicates on the guard's idempotency key; Twilio sends whatever it is given.
      const sent = (n: number) => (s.provider === 'http' ? Math.max(n, 1) : n + 1);
      // Twilio with lookupSince: the activity lists what went out first; it sends only when it found none.
      const looksUp = action.lookupSince !== null && s.provider === 'twilio';
      if (looksUp && fault) out.push(next({ ...fault }, fb('LOOKUP_FAILED')));
      if (looksUp && w.sms > 0) {
        out.push(next({}, fb('FOUND')));
        break;
      }
      out.push(next({ sms: sent(w.sms) }, fb('ACCEPTED')));
      if (fault) {
        out.push(next({ sms: sent(w.sms), ...fault }, fb('RETRYABLE', true))); // sent, answer lost
        out.push(next({ ...fault }, fb('RETRYABLE', true))); // timed out before it went out
        out.push(next({ ...fault }, fb('RETRYABLE', false))); // refused connection, 429
        out.push(next({ ...fault }, fb('REFUSED')));
      }
      break;
    }
  }
  return out;
}

/** The promise, in one end state. Returns what is wrong, or null. */
function violation(w: World, s: Scenario): string | null {
  const o: Outcome | null = outcomeOf(w.guard);
  if (!o) return `ended without an outcome in ${w.guard.state}`;
  const smsOutcome = (SMS_OUTCOMES as readonly string[]).includes(o);
  if (w.sms >= 2 && o !== 'FALLBACK_MAYBE_TWICE' && !(o === 'DOUBLE_DELIVERY' && w.guard.sms.blind)) return `${w.sms} SMS but ${o}`;
  if (o === 'FALLBACK_SENT' && w.sms !== 1) return `FALLBACK_SENT with ${w.sms} SMS`;
  if (w.sms > 0 && !smsOutcome && o !== 'DOUBLE_DELIVERY') return `an SMS went out but the outcome is ${o}`;
  if (o === 'DELIVERED' && w.truth !== 'delivered') return `DELIVERED but the platform says ${w.truth}`;
  if (w.truth === 'delivered' && w.sms > 0 && !smsOutcome && o !== 'DOUBLE_DELIVERY') return `delivered and texted, unrecorded (${o})`;
  const cannotArrive = w.truth === 'gone' || w.truth === 'never-created';
  if (cannotArrive && w.sms === 0) {
    const says = ['FALLBACK_FAILED', 'FALLBACK_UNCONFIRMED', 'CANCELLED', 'REVOKE_ERROR', 'SEND_ERROR', 'ORPHANED'];
    if (!s.fallback) says.push('REVOKED', 'UNRESOLVED', 'DELIVERED_UNCONFIRMED');
    if (s.onUnknown === 'no-fallback') says.push('UNRESOLVED', 'DELIVERED_UNCONFIRMED');
    if (!says.includes(o)) return `neither: not delivered (${w.truth}), no SMS, outcome ${o}`;
  }
  return null;
}

function explore(s: Scenario) {
  const m = message(s);
  const input: GuardInput = { agentId: m.agentId, messageId: m.messageId, message: m };
  const start: World = {
    guard: initialGuard('wf', input, iso(T0)),
    truth: s.guardSends ? 'never-created' : 'queued',
    sms: 0,
    pending: [],
    emitted: 0,
    deliveredEventLost: false,
    budget: { faults: s.faults, cancel: 1, extend: 1, ttlFailed: 1 },
    clock: T0,
    done: false,
  };
  let paths = 0;
  let ends = 0;
  const violations: string[] = [];
  const seen = new Map<string, number>();
  const maxDepth = 40;
  // Paths through the DAG of worlds, counted once per distinct world (the timeline is left out of the key).
  const walk = (w: World, depth: number): number => {
    const key = JSON.stringify([{ ...w.guard, timeline: null }, w.truth, w.sms, w.pending, w.budget, w.done, w.deliveredEventLost]);
    const known = seen.get(key);
    if (known !== undefined) return known;
    if (depth > maxDepth) throw new Error(`deeper than ${maxDepth}: ${w.guard.timeline.map((t) => t.event).join(' → ')}`);
    if (w.done) {
      ends += 1;
      const v = violation(w, s);
      if (v && violations.length < 5) violations.push(`${v}: ${w.guard.timeline.map((t) => `${t.event}→${t.state}`).join(', ')}`);
      seen.set(key, 1);
      return 1;
    }
    let n = 0;
    for (const nw of moves(w, s, input)) n += walk(nw, depth + 1);
    seen.set(key, n);
    return n;
  };
  paths = walk(start, 0);
  return { paths, ends, worlds: seen.size, violations };
}

const scenarios: Scenario[] = [];
for (const provider of ['twilio', 'http'] as const)
  for (const onUnknown of ['fallback', 'no-fallback'] as const)
    for (const platformTtl of [false, true])
      for (const guardSends of [false, true]) scenarios.push({ name: `${provider}, ${onUnknown}, ttl ${platformTtl}, sends ${guardSends}`, provider, onUnknown, platformTtl, guardSends, fallback: true, faults: 2 });
scenarios.push({ name: 'twilio, no fallback text', provider: 'twilio', onUnknown: 'fallback', platformTtl: true, guardSends: false, fallback: false, faults: 2 });

describe('lifecycle, exhaustively (2 faults per run: lost, duplicated or late answers and events)', () => {
  const totals = { paths: 0, worlds: 0 };
  for (const s of scenarios) {
    it(s.name, () => {
      const r = explore(s);
      totals.paths += r.paths;
      totals.worlds += r.worlds;
      expect(r.violations).toEqual([]);
      expect(r.ends).toBeGreaterThan(0);
    });
  }
  it('covers the interleavings it claims', () => {
    console.log(`exhaustive check: ${totals.paths} interleavings, ${totals.worlds} distinct states, ${scenarios.length} scenarios`);
    expect(totals.paths).toBeGreaterThan(100_000);
  });
});
