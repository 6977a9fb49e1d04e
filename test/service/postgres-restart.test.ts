// The PostgreSQL engine through crashes (RBM_GUARD_ENGINE=postgres; skipped on the dev server,
// which has its own restart in the chaos test): the whole local stack — worker and webhook as
// child processes, the RBM simulator pushing events to the webhook with Pub/Sub-like retries — takes
// a batch of messages while the Temporal server is SIGKILLed, and in a second batch while PostgreSQL
// is stopped (fast shutdown) and started again. Every track() that was acknowledged names a guard
// that exists afterwards, every webhook event that was acknowledged reached its guard, and every
// guard ends right: delivered in time → DELIVERED with no SMS; never delivered → exactly one SMS.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../dev/stack/local-stack.ts';
import { engineFromEnv } from '../../service/engine/select.ts';
import type { GuardStatus } from '../../workflows/contract.ts';

const onPostgres = engineFromEnv() === 'postgres';
const N = Number(process.env.RBM_GUARD_RESTART_N ?? 80);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let stack: LocalStack;

beforeAll(async () => {
  if (!onPostgres) return;
  stack = await startLocalStack({ engine: 'postgres', encryptionEnv: { RBM_GUARD_ENCRYPTION: 'off' } });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

interface Sent {
  messageId: string;
  phone: string;
  delivered: boolean;
  workflowId?: string;
  /** The first track() call was answered (acknowledged) rather than failing during the outage. */
  ackedFirstTry: boolean;
}

/**
 * Sends N messages over ~3 s (every other one delivered well before its deadline), runs `fault`
 * after ~1 s, and tracks each like a backend: a failed track() is retried until it is acknowledged.
 */
async function batch(label: string, fault: () => Promise<void>): Promise<{ sent: Sent[]; faultMs: number; duringFault: number }> {
  const agentId = 'restart-agent';
  const sent: Sent[] = [];
  let faultMs = 0;
  let inFault = false;
  let duringFault = 0;
  const faultDone = sleep(1_000).then(async () => {
    const began = Date.now();
    inFault = true;
    await fault();
    inFault = false;
    faultMs = Date.now() - began;
  });
  const tracks: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    const delivered = i % 2 === 0;
    const m: Sent = { messageId: `${label}-${i}-${randomUUID()}`, phone: `+1415${String(2_000_000 + i)}${label === 'pg' ? 1 : 2}`, delivered, ackedFirstTry: false };
    sent.push(m);
    if (inFault) duringFault++;
    stack.sim.registerSent({ agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: delivered ? 300 : null } });
    tracks.push(
      (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const r = await stack.guards.track({
              agentId,
              messageId: m.messageId,
              phone: m.phone,
              staleIn: delivered ? '20s' : '3s',
              fallbackText: `code ${i}`,
              trafficType: 'AUTHENTICATION',
              policy: { graceMs: 1_000, lingerMs: 0, revokeAttempts: 3, maxRevokeRounds: 2, fallbackAttempts: 6 },
            });
            m.workflowId = r.workflowId;
            m.ackedFirstTry = attempt === 1;
            return;
          } catch (err) {
            if (attempt > 60) throw err;
            await sleep(500);
          }
        }
      })(),
    );
    await sleep(3_000 / N);
  }
  await Promise.all([...tracks, faultDone]);
  return { sent, faultMs, duringFault };
}

async function verify(sent: Sent[]) {
  const outcomes: Record<string, number> = {};
  for (const m of sent) {
    expect(m.workflowId, `${m.messageId} was never tracked`).toBeDefined();
    const status = (await stack.client.workflow.getHandle(m.workflowId!).result()) as GuardStatus;
    outcomes[status.outcome ?? 'none'] = (outcomes[status.outcome ?? 'none'] ?? 0) + 1;
    const sms = stack.sink.distinctSendsTo(m.phone);
    if (m.delivered) {
      expect({ id: m.messageId, outcome: status.outcome, sms }).toEqual({ id: m.messageId, outcome: 'DELIVERED', sms: 0 });
    } else {
      expect({ id: m.messageId, outcome: status.outcome, sms }).toEqual({ id: m.messageId, outcome: 'FALLBACK_SENT', sms: 1 });
    }
  }
  // Every acknowledged webhook event of these messages reached a guard that ended DELIVERED.
  const ids = new Set(sent.map((m) => m.messageId));
  const acked = stack.sim.pushes().filter((p) => p.acknowledged && 'messageId' in p.event && ids.has(String(p.event.messageId)));
  const unacked = stack.sim.pushes().filter((p) => !p.acknowledged && 'messageId' in p.event && ids.has(String(p.event.messageId)));
  return { outcomes, ackedEvents: acked.length, unackedEvents: unacked.length, ackedFirstTry: sent.filter((m) => m.ackedFirstTry).length };
}

describe.skipIf(!onPostgres)('PostgreSQL engine: restarts under load', () => {
  it('Temporal server SIGKILLed mid-batch: every acknowledged track and event kept, every guard ends right', { timeout: 180_000 }, async () => {
    const { sent, faultMs, duringFault } = await batch('kill', async () => {
      await stack.postgres!.killServer();
      await sleep(1_000);
      await stack.postgres!.startServer();
    });
    await stack.sim.settled();
    const r = await verify(sent);
    console.log(`[restart] Temporal SIGKILL: ${N} messages, ${duringFault} sent and tracked while it was down, ${r.ackedFirstTry} tracks acknowledged at once, ${N - r.ackedFirstTry} retried; down ${faultMs} ms; events acked ${r.ackedEvents}; outcomes ${JSON.stringify(r.outcomes)}`);
    expect(r.outcomes).toEqual({ DELIVERED: N / 2, FALLBACK_SENT: N / 2 });
    expect(r.ackedEvents).toBeGreaterThanOrEqual(N / 2);
    expect(r.unackedEvents).toBe(0);
    expect(duringFault).toBeGreaterThan(0); // the fault hit while the backend was tracking
  });

  it('PostgreSQL stopped (fast shutdown) and started mid-batch: the same', { timeout: 180_000 }, async () => {
    const { sent, faultMs, duringFault } = await batch('pg', async () => {
      await stack.postgres!.postgres.stop();
      await sleep(1_000);
      await stack.postgres!.postgres.start();
    });
    await stack.sim.settled();
    const r = await verify(sent);
    console.log(`[restart] PostgreSQL fast stop/start: ${N} messages, ${duringFault} sent and tracked while it was down, ${r.ackedFirstTry} tracks acknowledged at once, ${N - r.ackedFirstTry} retried; down ${faultMs} ms; events acked ${r.ackedEvents}; outcomes ${JSON.stringify(r.outcomes)}`);
    expect(r.outcomes).toEqual({ DELIVERED: N / 2, FALLBACK_SENT: N / 2 });
    expect(r.ackedEvents).toBeGreaterThanOrEqual(N / 2);
    expect(r.unackedEvents).toBe(0);
    expect(duringFault).toBeGreaterThan(0); // the fault hit while the backend was tracking
  });
});
