// What every part of the RBM simulator shares: its timers and in-flight work (so close() stops all
// of it at once), its counters, and how it answers over HTTP in Google's error shape.
import type { FastifyReply } from 'fastify';
import type { RbmSimulatorStats } from './rbm-types.ts';

export interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  408: 'DEADLINE_EXCEEDED',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export function googleError(code: number, message: string, headers?: Record<string, string>): Outcome {
  return { status: code, body: { error: { code, message, status: GOOGLE_STATUS[code] ?? 'UNKNOWN' } }, headers };
}

export function newStats(): RbmSimulatorStats {
  return {
    tokenRequests: 0,
    tokensIssued: 0,
    tokensRejected: 0,
    unauthenticated: 0,
    creates: 0,
    createsAccepted: 0,
    revokes: 0,
    revoked: 0,
    revokeAlreadyDelivered: 0,
    revokeUnknown: 0,
    revokeOfGone: 0,
    ttlRaces: 0,
    faults: { status: 0, hang: 0, lostResponse: 0 },
    raceRevokes: 0,
    delivered: 0,
    ttlRevoked: 0,
    ttlRevokeFailed: 0,
    events: 0,
    pushAttempts: 0,
    pushFailedAttempts: 0,
    pushesAcknowledged: 0,
    pushesAbandoned: 0,
  };
}

export class SimRuntime {
  readonly counters = newStats();
  readonly closeController = new AbortController();
  private closingNow = false;
  /** Every live timer, with what to do if the simulator closes first. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly inflight = new Set<Promise<unknown>>();

  get closing(): boolean {
    return this.closingNow;
  }

  after(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(timer, () => {});
    return timer;
  }

  cancel(timer: NodeJS.Timeout | undefined): void {
    if (!timer) return;
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  /** Sleeps, but wakes at once when the simulator closes. */
  wait(ms: number): Promise<void> {
    if (this.closingNow) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    void promise.finally(() => this.inflight.delete(promise)).catch(() => {});
    return promise;
  }

  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Marks the simulator closing, aborts requests in flight and wakes every sleeper. */
  beginClose(): boolean {
    if (this.closingNow) return false;
    this.closingNow = true;
    this.closeController.abort();
    for (const [timer, onClose] of this.timers) {
      clearTimeout(timer);
      onClose();
    }
    this.timers.clear();
    return true;
  }

  send(reply: FastifyReply, outcome: Outcome): FastifyReply {
    if (outcome.headers) reply.headers(outcome.headers);
    return reply.code(outcome.status).send(outcome.body);
  }

  /** Destroys the socket without answering. */
  drop(reply: FastifyReply): void {
    reply.hijack();
    reply.raw.destroy();
  }
}
