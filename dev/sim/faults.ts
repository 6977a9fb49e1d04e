// The simulator's faults: queues of injected faults per operation and message (or '*'), random faults
// drawn from one seeded PRNG (per call, and per message when it is created, so a seed replays the same
// story), and how a fault wraps the real operation: a status, a hang, or a lost response.
import type { FastifyReply } from 'fastify';
import { seededRandom } from '../random.ts';
import type { DeliveryPlan, RandomFaults, RbmFault, RevokeAnswer } from './rbm-types.ts';
import { googleError, type Outcome, type SimRuntime } from './runtime.ts';

export type FaultOp = 'create' | 'revoke' | 'token';

const FAULT_MESSAGES: Partial<Record<number, string>> = {
  401: 'Request had invalid authentication credentials.',
  429: 'Quota exceeded.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
};

export class FaultInjector {
  private readonly queues = new Map<string, RbmFault[]>();
  private random: { faults: RandomFaults; next: () => number } | undefined;

  private readonly rt: SimRuntime;

  constructor(rt: SimRuntime, random: RandomFaults | undefined) {
    this.rt = rt;
    this.setRandom(random);
  }

  enqueue(op: FaultOp, messageIdOrAll: string, faults: RbmFault[]): void {
    const key = `${op}:${messageIdOrAll}`;
    this.queues.set(key, [...(this.queues.get(key) ?? []), ...faults]);
  }

  setRandom(random: RandomFaults | undefined): void {
    this.random = random ? { faults: random, next: seededRandom(random.seed) } : undefined;
  }

  /** Per-message faults drawn for a chaos run. */
  /** Per-message faults drawn for a chaos run. */
  randomPlan(): Partial<DeliveryPlan> {
    const random = this.random;
    if (!random) return {};
    const r = random.faults;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && random.next() < rate;
    const plan: Partial<DeliveryPlan> = {};
    if (roll(r.raceDelivery)) plan.raceRevoke = random.next() < 0.5 ? 200 : 404;
    if (roll(r.ttlRacesRevoke)) plan.ttlRacesRevoke = true;
    if (roll(r.ttlRevokeFailed)) plan.ttlOutcome = 'revoke-failed';
    if (roll(r.duplicateEvent)) plan.duplicateEvent = true;
    if (roll(r.readBeforeDelivered)) plan.readBeforeDelivered = true;
    if (roll(r.noEvent)) plan.noEvent = true;
    if (roll(r.eventDelay)) plan.eventDelayMs = Math.floor(random.next() * (r.eventDelayMaxMs ?? 500));
    return plan;
  }

  /** Applies the next fault (if any) around `perform`, and answers. */
  async respond(
    op: FaultOp,
    messageId: string | undefined,
    reply: FastifyReply,
    perform: () => Outcome,
    record?: (answer: RevokeAnswer) => void,
  ): Promise<void> {
    const fault = this.takeFault(op, messageId);
    if (!fault) {
      const outcome = perform();
      record?.(outcome.status);
      return this.rt.send(reply, outcome);
    }
    if ('lostResponse' in fault) {
      this.rt.counters.faults.lostResponse++;
      perform();
      record?.('lost');
      return this.rt.drop(reply);
    }
    if ('hangMs' in fault) {
      this.rt.counters.faults.hang++;
      let outcome = fault.perform === false ? undefined : perform();
      await this.rt.wait(fault.hangMs);
      if (fault.then === 'reply' && !this.rt.closing) {
        // perform: false + reply = a slow server that acts after the client gave up.
        outcome ??= perform();
        record?.(outcome.status);
        return this.rt.send(reply, outcome);
      }
      record?.('dropped');
      return this.rt.drop(reply);
    }
    this.rt.counters.faults.status++;
    if (fault.perform) perform();
    record?.(fault.status);
    const headers = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : undefined;
    return this.rt.send(reply, googleError(fault.status, FAULT_MESSAGES[fault.status] ?? 'Injected fault.', headers));
  }

  private takeFault(op: FaultOp, messageId: string | undefined): RbmFault | undefined {
    for (const key of [messageId && `${op}:${messageId}`, `${op}:*`]) {
      const queue = key ? this.queues.get(key) : undefined;
      const fault = queue?.shift();
      if (fault) return fault;
    }
    const random = this.random;
    if (!random || op === 'token') return undefined;
    const r = random.faults;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && random.next() < rate;
    const hangMs = r.hangMs ?? 2000;
    if (op === 'revoke') {
      if (roll(r.revokeLostResponse)) return { lostResponse: true };
      // A timed-out revoke in a chaos run may or may not have happened, as in production.
      if (roll(r.revokeHang)) return { hangMs, perform: random.next() < 0.5 };
      if (roll(r.revoke429or5xx)) return this.randomStatusFault(random.next);
    } else {
      if (roll(r.createLostResponse)) return { lostResponse: true };
      if (roll(r.create429or5xx)) return this.randomStatusFault(random.next);
    }
    return undefined;
  }

  private randomStatusFault(next: () => number): RbmFault {
    const pick = next();
    if (pick < 0.4) return { status: 429, retryAfterSeconds: 1 };
    return { status: pick < 0.7 ? 500 : 503 };
  }
}
