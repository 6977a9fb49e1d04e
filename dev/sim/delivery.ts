// The delivery model: each message's plan (when the phone takes it, how its TTL ends, how its events
// misbehave), its timers, and the events it pushes — DELIVERED/READ when the phone takes it,
// TTL_EXPIRATION_REVOKED (or _REVOKE_FAILED) when its expireTime/ttl lapses first. A message is
// delivered or revoked, never both; what happened is kept as its ground truth.
import { E164_PATTERN } from '../../workflows/names.ts';
import type { FaultInjector } from './faults.ts';
import { serverEvent, userEvent, type Pusher } from './pubsub.ts';
import type { DeliveryPlan, MessageTruth, RbmEvent, RbmSimulatorOptions, RegisterSentInput, UserEvent } from './rbm-types.ts';
import type { SimRuntime } from './runtime.ts';


export interface SimMessage extends MessageTruth {
  state: 'pending' | 'delivered' | 'revoked';
  deliveryTimer?: NodeJS.Timeout;
  ttlTimer?: NodeJS.Timeout;
  createdBody?: unknown;
}

export class DeliveryModel {
  readonly messages = new Map<string, SimMessage>();
  private readonly pendingPlans = new Map<string, Partial<DeliveryPlan>>();
  private readonly defaultPlan: DeliveryPlan;

  private readonly rt: SimRuntime;
  private readonly faults: FaultInjector;
  private readonly pusher: Pusher;
  private readonly options: Pick<RbmSimulatorOptions, 'defaultPlan' | 'eventAgentId'>;

  constructor(rt: SimRuntime, faults: FaultInjector, pusher: Pusher, options: Pick<RbmSimulatorOptions, 'defaultPlan' | 'eventAgentId'>) {
    this.rt = rt;
    this.faults = faults;
    this.pusher = pusher;
    this.options = options;
    this.defaultPlan = { deliverAfterMs: 100, ...options.defaultPlan };
  }

  add(input: {
    agentId: string;
    messageId: string;
    phone: string;
    origin: 'api' | 'registered';
    sentAt: number;
    expireAt?: number;
    plan?: Partial<DeliveryPlan>;
  }): SimMessage {
    const planned = this.pendingPlans.get(input.messageId);
    this.pendingPlans.delete(input.messageId);
    const message: SimMessage = {
      agentId: input.agentId,
      messageId: input.messageId,
      phone: input.phone,
      origin: input.origin,
      sentAt: input.sentAt,
      expireAt: input.expireAt,
      plan: { ...this.defaultPlan, ...this.faults.randomPlan(), ...input.plan, ...planned },
      state: 'pending',
      ttlRevoked: false,
      ttlRevokeFailed: false,
      revokeCalls: 0,
      revokeAnswers: [],
      eventsPushed: [],
    };
    this.messages.set(input.messageId, message);
    this.schedule(message);
    return message;
  }

  schedule(message: SimMessage): void {
    this.rt.cancel(message.deliveryTimer);
    this.rt.cancel(message.ttlTimer);
    message.deliveryTimer = message.ttlTimer = undefined;
    if (message.state !== 'pending') return;
    const now = Date.now();
    if (message.plan.deliverAfterMs !== null) {
      const at = message.sentAt + message.plan.deliverAfterMs;
      message.deliveryTimer = this.rt.after(at - now, () => this.markDelivered(message));
    }
    if (message.expireAt !== undefined && !message.ttlRevokeFailed) {
      message.ttlTimer = this.rt.after(message.expireAt - now, () => this.expire(message));
    }
  }

  markDelivered(message: SimMessage): void {
    if (message.state !== 'pending') return;
    message.state = 'delivered';
    message.deliveredAt = Date.now();
    this.rt.cancel(message.deliveryTimer);
    this.rt.cancel(message.ttlTimer);
    this.rt.counters.delivered++;
    const plan = message.plan;
    const delivered = this.messageEvent(message, 'DELIVERED');
    const sequence: RbmEvent[] = plan.readBeforeDelivered ? [this.messageEvent(message, 'READ'), delivered] : [delivered];
    if (plan.duplicateEvent) sequence.push(delivered);
    this.emit(message, sequence, plan.readAfterMs);
  }

  markRevoked(message: SimMessage): void {
    message.state = 'revoked';
    message.revokedAt = Date.now();
    this.rt.cancel(message.deliveryTimer);
    this.rt.cancel(message.ttlTimer);
  }

  /** The message's TTL lapsed while it was pending. */
  expire(message: SimMessage, outcome = message.plan.ttlOutcome): void {
    if (message.state !== 'pending' || message.ttlRevokeFailed) return;
    if (outcome === 'revoke-failed') {
      message.ttlRevokeFailed = true;
      this.rt.counters.ttlRevokeFailed++;
    } else {
      this.markRevoked(message);
      message.ttlRevoked = true;
      this.rt.counters.ttlRevoked++;
    }
    const eventType = message.ttlRevoked ? 'TTL_EXPIRATION_REVOKED' : 'TTL_EXPIRATION_REVOKE_FAILED';
    const event = serverEvent({ ...message, agentId: this.eventAgentId(message.agentId), eventType });
    this.emit(message, message.plan.duplicateEvent ? [event, event] : [event]);
  }

  private messageEvent(message: SimMessage, eventType: 'DELIVERED' | 'READ'): UserEvent {
    return userEvent({ ...message, agentId: this.eventAgentId(message.agentId), eventType });
  }

  private eventAgentId(agentId: string): string {
    return this.options.eventAgentId === 'rbm.goog' ? `${agentId}@rbm.goog` : agentId;
  }

  /** Pushes events in order (each after the previous was acked or given up), honouring the plan. */
  private emit(message: SimMessage, events: RbmEvent[], readAfterMs?: number): void {
    if (message.plan.noEvent) return;
    const delayMs = message.plan.eventDelayMs ?? 0;
    void this.rt.track(
      (async () => {
        if (delayMs > 0) await this.rt.wait(delayMs);
        for (const event of events) {
          if (this.rt.closing) return;
          await this.pusher.pushWithRetry(event, { retry: true }, message);
        }
        if (readAfterMs !== undefined && !this.rt.closing) {
          await this.rt.wait(readAfterMs);
          if (!this.rt.closing) await this.pusher.pushWithRetry(this.messageEvent(message, 'READ'), { retry: true }, message);
        }
      })(),
    );
  }

  plan(messageId: string, plan: Partial<DeliveryPlan>): void {
    const message = this.messages.get(messageId);
    if (!message) {
      this.pendingPlans.set(messageId, { ...this.pendingPlans.get(messageId), ...plan });
      return;
    }
    message.plan = { ...message.plan, ...plan };
    this.schedule(message);
  }

  registerSent(input: RegisterSentInput): void {
    if (!E164_PATTERN.test(input.phone)) throw new Error('registerSent: phone must be E.164');
    if (this.messages.has(input.messageId)) throw new Error(`registerSent: ${input.messageId} is already known`);
    const sentAt = input.sentAt ?? Date.now();
    const expireAt = input.expireTime ? Date.parse(input.expireTime) : undefined;
    this.add({ ...input, origin: 'registered', sentAt, expireAt });
  }

  deliver(messageId: string): boolean {
    const message = this.messages.get(messageId);
    if (message?.state !== 'pending') return false;
    this.markDelivered(message);
    return true;
  }
}

export function toTruth(message: SimMessage): MessageTruth {
  return {
    agentId: message.agentId,
    messageId: message.messageId,
    phone: message.phone,
    text: message.text,
    origin: message.origin,
    sentAt: message.sentAt,
    expireAt: message.expireAt,
    plan: { ...message.plan },
    deliveredAt: message.deliveredAt,
    revokedAt: message.revokedAt,
    ttlRevoked: message.ttlRevoked,
    ttlRevokeFailed: message.ttlRevokeFailed,
    revokeCalls: message.revokeCalls,
    revokeAnswers: [...message.revokeAnswers],
    eventsPushed: [...message.eventsPushed],
  };
}
