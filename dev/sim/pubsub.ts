// Pub/Sub, as RBM's webhook sees it: event builders (user events, server events, user messages), the
// push envelope and its X-Goog-Signature, the URL-verification request, and the pusher, which
// retries every unacknowledged push with backoff like a push subscription (bounded here) and keeps
// a record of each attempt.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type {
  PubSubEnvelope,
  PushAttemptStatus,
  PushOptions,
  PushRecord,
  PushRetryOptions,
  RbmEvent,
  ServerEvent,
  ServerEventType,
  UserEvent,
  UserEventType,
  UserMessage,
} from './rbm-types.ts';
import type { SimRuntime } from './runtime.ts';

/** Status codes a Pub/Sub push endpoint acknowledges with; anything else is redelivered. */
const PUBSUB_ACK_STATUSES = new Set([102, 200, 201, 202, 204]);

export function userEvent(input: {
  agentId: string;
  phone: string;
  eventType: UserEventType;
  messageId?: string;
  eventId?: string;
  /** null = leave sendTime out (the docs say it may be absent). */
  sendTime?: string | null;
}): UserEvent {
  const event: UserEvent = {
    senderPhoneNumber: input.phone,
    eventType: input.eventType,
    eventId: input.eventId ?? randomEventId(),
    agentId: input.agentId,
  };
  if (input.messageId !== undefined) event.messageId = input.messageId;
  if (input.sendTime !== null) event.sendTime = input.sendTime ?? new Date().toISOString();
  return event;
}

export function serverEvent(input: {
  agentId: string;
  phone: string;
  messageId: string;
  eventType: ServerEventType;
  eventId?: string;
  sendTime?: string;
}): ServerEvent {
  return {
    phoneNumber: input.phone,
    agentId: input.agentId,
    messageId: input.messageId,
    eventType: input.eventType,
    eventId: input.eventId ?? randomEventId(),
    sendTime: input.sendTime ?? new Date().toISOString(),
  };
}

export function userMessage(input: { agentId: string; phone: string; text: string; messageId?: string }): UserMessage {
  return {
    senderPhoneNumber: input.phone,
    // The phone's own id, not a UUID.
    messageId: input.messageId ?? `MxB${randomBytes(9).toString('base64url')}`,
    sendTime: new Date().toISOString(),
    agentId: input.agentId,
    text: input.text,
  };
}

/** base64(HMAC-SHA512(key = clientToken, message = the decoded data bytes)). */
export function signEventData(data: Buffer | string, clientToken: string): string {
  return createHmac('sha512', Buffer.from(clientToken, 'utf8')).update(data).digest('base64');
}

/** A Pub/Sub push body for an event, and its headers (X-Goog-Signature unless 'missing'). */
export function pubsubPush(
  event: object,
  options: PushOptions & { clientToken: string; subscription?: string; pubsubMessageId?: string },
): { body: PubSubEnvelope; headers: Record<string, string> } {
  const data = Buffer.from(JSON.stringify(event), 'utf8');
  const messageId = options.pubsubMessageId ?? String(randomBytes(6).readUIntBE(0, 6));
  const publishTime = new Date().toISOString();
  const body: PubSubEnvelope = {
    message: {
      data: data.toString('base64'),
      attributes: options.attributes ?? {},
      messageId,
      message_id: messageId,
      publishTime,
      publish_time: publishTime,
    },
    subscription: options.subscription ?? 'projects/rbm-sim/subscriptions/rbm-guard-push',
  };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = options.signature ?? 'valid';
  if (signature === 'valid') headers['x-goog-signature'] = signEventData(data, options.clientToken);
  if (signature === 'invalid') headers['x-goog-signature'] = signEventData(data, `not-${options.clientToken}`);
  return { body, headers };
}

/** The URL-verification POST body RBM sends when a webhook is configured. */
export function verificationRequest(clientToken: string, secret: string): { clientToken: string; secret: string } {
  return { clientToken, secret };
}

const randomEventId = () => `MxSim${randomBytes(12).toString('base64url')}`;

export class Pusher {
  webhookUrl: string | undefined;
  onEvent: ((event: RbmEvent) => Promise<void>) | undefined;
  /** Every push so far, including those of unknown messages. */
  readonly all: PushRecord[] = [];
  private readonly options: Required<PushRetryOptions>;
  private pushSlots: number;
  private readonly pushQueue: (() => void)[] = [];

  private readonly rt: SimRuntime;
  readonly clientToken: string;

  /** The token that signs an agent's events when it is not the default one (its partner's). */
  private readonly tokenFor: (agentId: string) => string | undefined;

  constructor(
    rt: SimRuntime,
    clientToken: string,
    options: { webhookUrl?: string; onEvent?: (event: RbmEvent) => Promise<void>; push?: PushRetryOptions; tokenFor?: (agentId: string) => string | undefined },
  ) {
    this.rt = rt;
    this.clientToken = clientToken;
    this.tokenFor = options.tokenFor ?? (() => undefined);
    this.webhookUrl = options.webhookUrl;
    this.onEvent = options.onEvent;
    this.options = {
      maxAttempts: options.push?.maxAttempts ?? 8,
      minBackoffMs: options.push?.minBackoffMs ?? 20,
      maxBackoffMs: options.push?.maxBackoffMs ?? 1000,
      timeoutMs: options.push?.timeoutMs ?? 5000,
      concurrency: options.push?.concurrency ?? 32,
    };
    this.pushSlots = this.options.concurrency;
  }

  async pushWithRetry(
    event: RbmEvent,
    options: PushOptions,
    message?: { eventsPushed: PushRecord[] },
    via: PushRecord['via'] = this.onEvent ? 'callback' : 'webhook',
  ): Promise<PushRecord> {
    const record: PushRecord = {
      event,
      via,
      createdAt: Date.now(),
      attempts: [],
      acknowledged: false,
      abandoned: false,
    };
    this.rt.counters.events++;
    this.all.push(record);
    message?.eventsPushed.push(record);
    // One Pub/Sub message: redeliveries keep its id.
    const push = pubsubPush(event, { ...options, clientToken: options.clientToken ?? this.tokenFor(event.agentId) ?? this.clientToken });
    const maxAttempts = options.retry === false ? 1 : this.options.maxAttempts;
    for (let attempt = 1; !this.rt.closing; attempt++) {
      const status = await this.attempt(via, event, push);
      record.attempts.push({ at: Date.now(), status });
      this.rt.counters.pushAttempts++;
      if (typeof status === 'number' && PUBSUB_ACK_STATUSES.has(status)) {
        record.acknowledged = true;
        this.rt.counters.pushesAcknowledged++;
        return record;
      }
      this.rt.counters.pushFailedAttempts++;
      if (attempt >= maxAttempts) break;
      await this.rt.wait(Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** (attempt - 1)));
    }
    record.abandoned = true;
    this.rt.counters.pushesAbandoned++;
    return record;
  }

  private async attempt(
    via: PushRecord['via'],
    event: RbmEvent,
    push: ReturnType<typeof pubsubPush>,
  ): Promise<PushAttemptStatus> {
    if (via === 'callback') {
      const onEvent = this.onEvent;
      if (!onEvent) return 'no-endpoint';
      try {
        await onEvent(event);
        return 200;
      } catch {
        return 'error';
      }
    }
    const url = this.webhookUrl;
    if (!url) return 'no-endpoint';
    await this.acquirePushSlot();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: push.headers,
        body: JSON.stringify(push.body),
        signal: AbortSignal.any([this.rt.closeController.signal, AbortSignal.timeout(this.options.timeoutMs)]),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 'error';
    } finally {
      this.releasePushSlot();
    }
  }

  private acquirePushSlot(): Promise<void> {
    if (this.pushSlots > 0) {
      this.pushSlots--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.pushQueue.push(resolve));
  }

  private releasePushSlot(): void {
    const next = this.pushQueue.shift();
    if (next) next();
    else this.pushSlots++;
  }

  /** Lets every push waiting for a slot go (they see the simulator closing and give up). */
  releaseAll(): void {
    for (const release of this.pushQueue.splice(0)) release();
  }

  async verifyWebhook(options: { secret?: string; clientToken?: string } = {}): Promise<{ status: number; body: string }> {
    if (!this.webhookUrl) throw new Error('verifyWebhook: no webhook URL set');
    const response = await fetch(this.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(verificationRequest(options.clientToken ?? this.clientToken, options.secret ?? randomUUID())),
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    return { status: response.status, body: await response.text() };
  }
}
