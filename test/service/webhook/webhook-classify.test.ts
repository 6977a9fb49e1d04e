// The webhook's pure decisions, without HTTP or Temporal: which route a request takes (header and
// body), and what a signed push's data means — a guard's event, deliberately ignored, or unroutable.
import { describe, expect, it } from 'vitest';
import {
  classifyEvent,
  decodeBase64,
  routeRequest,
  UNROUTABLE_REASONS,
  webhookTypeOf,
  type Classified,
  type PushEnvelope,
  type WebhookType,
} from '../../../service/webhook/classify.ts';

const envelope = (over: Partial<PushEnvelope['message']> = {}): PushEnvelope => ({ message: { data: 'e30=', messageId: 'ps-1', ...over } });
const classify = (data: unknown, opts: { webhookType?: WebhookType; fallbackAgentId?: string; env?: PushEnvelope } = {}): Classified =>
  classifyEvent({
    envelope: opts.env ?? envelope(),
    data: Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)),
    webhookType: opts.webhookType ?? 'message_callback',
    fallbackAgentId: opts.fallbackAgentId,
  });
const event = (over: Record<string, unknown> = {}) => ({
  agentId: 'acme@rbm.goog',
  messageId: 'm-1',
  eventId: 'ev-1',
  eventType: 'DELIVERED',
  senderPhoneNumber: '+15550001111',
  sendTime: '2026-12-01T10:00:00Z',
  ...over,
});

describe('X-Goog-Webhook-Type', () => {
  it.each([
    [undefined, 'none'],
    ['', 'none'],
    ['verification', 'verification'],
    [' Message_Callback ', 'message_callback'],
    [['agent_callback', 'x'], 'agent_callback'],
    ['other', 'other'],
    ['none', 'other'],
    ['brand_new_kind', 'other'],
  ] as const)('%j reads as %s (bounded values for the metric)', (header, type) => {
    expect(webhookTypeOf(header as string | string[] | undefined)).toBe(type);
  });
});

describe('routeRequest', () => {
  const handshake = { clientToken: 't', secret: 's' };
  const pushBody = { message: { data: Buffer.from('{}').toString('base64') } };

  it.each(['none', 'verification', 'message_callback', 'agent_callback', 'other'] as const)('knows the verification body under header %s', (type) => {
    expect(routeRequest(handshake, type)).toEqual({ kind: 'verification', clientToken: 't', secret: 's' });
  });

  it('takes a push under any header but verification', () => {
    for (const type of ['none', 'message_callback', 'agent_callback', 'other'] as const) {
      const route = routeRequest(pushBody, type);
      expect(route.kind).toBe('push');
      if (route.kind === 'push') expect(route.data.toString()).toBe('{}');
    }
    expect(routeRequest(pushBody, 'verification')).toMatchObject({ kind: 'invalid', status: 400, code: 'bad_verification' });
  });

  it.each([
    ['an array', [1], 'none', 'not_an_object'],
    ['null', null, 'none', 'not_an_object'],
    ['no message, no handshake', { subscription: 's' }, 'none', 'no_message'],
    ['a half handshake under the verification header', { clientToken: 't' }, 'verification', 'bad_verification'],
    ['a message without data', { message: { messageId: '1' } }, 'none', 'bad_envelope'],
    ['data that is not base64', { message: { data: 'not base64!' } }, 'message_callback', 'data_not_base64'],
  ] as const)('refuses %s with 400 %s', (_what, body, type, code) => {
    expect(routeRequest(body, type)).toMatchObject({ kind: 'invalid', status: 400, code });
  });
});

describe('classifyEvent', () => {
  it('turns a DELIVERED into its guard\'s signal: agent normalised, eventId and sendTime kept', () => {
    expect(classify(event())).toEqual({
      kind: 'guard',
      eventType: 'DELIVERED',
      agentId: 'acme',
      messageId: 'm-1',
      signal: { eventId: 'ev-1', sendTime: '2026-12-01T10:00:00Z' },
    });
  });

  it('keeps an RFC 3339 sendTime (RBM sends nanoseconds) and drops a malformed one, not the event', () => {
    expect(classify(event({ sendTime: '2026-12-01T10:00:00.123456789Z' }))).toMatchObject({ signal: { eventId: 'ev-1', sendTime: '2026-12-01T10:00:00.123456789Z' } });
    for (const sendTime of ['yesterday', 'x'.repeat(5000), '2026-13-01T10:00:00Z']) {
      expect(classify(event({ sendTime }))).toEqual(expect.objectContaining({ kind: 'guard', signal: { eventId: 'ev-1' } }));
    }
  });

  it('routes every guard event type, user and server shapes, under any callback header', () => {
    for (const eventType of ['DELIVERED', 'READ', 'TTL_EXPIRATION_REVOKED', 'TTL_EXPIRATION_REVOKE_FAILED']) {
      for (const webhookType of ['none', 'message_callback', 'agent_callback', 'other'] as const) {
        const shaped = eventType.startsWith('TTL') ? { ...event({ eventType }), senderPhoneNumber: undefined, phoneNumber: '+1555' } : event({ eventType });
        expect(classify(shaped, { webhookType })).toMatchObject({ kind: 'guard', eventType });
      }
    }
  });

  it('uses RBM_AGENT_ID for an event without an agent, and the Pub/Sub id for one without an eventId', () => {
    expect(classify(event({ agentId: undefined, eventId: undefined }), { fallbackAgentId: 'fallback-agent' })).toMatchObject({
      kind: 'guard',
      agentId: 'fallback-agent',
      signal: { eventId: 'pubsub:ps-1' },
    });
    expect(classify(event({ eventId: undefined }), { env: envelope({ messageId: undefined, message_id: 'snake' }) })).toMatchObject({
      signal: { eventId: 'pubsub:snake' },
    });
  });

  it.each([
    ['IS_TYPING', event({ eventType: 'IS_TYPING' })],
    ['SUBSCRIBE', event({ eventType: 'SUBSCRIBE', messageId: undefined })],
    ['UNSUBSCRIBE', event({ eventType: 'UNSUBSCRIBE' })],
    ['USER_MESSAGE', { agentId: 'a', messageId: 'x', text: 'STOP' }],
    ['USER_MESSAGE', { agentId: 'a', messageId: 'x', suggestionResponse: { postbackData: 'p' } }],
    ['AGENT_LAUNCH_EVENT', { agentId: 'a', agentLaunchEvent: {} }],
  ])('ignores %s', (what, data) => {
    expect(classify(data)).toEqual({ kind: 'ignored', what });
  });

  it('ignores anything Pub/Sub marks as an agent launch, and agent callbacks that are not guard events', () => {
    expect(classify('not even json', { env: envelope({ attributes: { type: 'agent_launch_event' } }) })).toEqual({ kind: 'ignored', what: 'AGENT_LAUNCH_EVENT' });
    expect(classify({ agentId: 'a', brandNew: 1 }, { webhookType: 'agent_callback' })).toEqual({ kind: 'ignored', what: 'AGENT_CALLBACK' });
    expect(classify(event({ eventType: 'AGENT_VERIFIED' }), { webhookType: 'agent_callback' })).toEqual({ kind: 'ignored', what: 'AGENT_CALLBACK' });
  });

  const unroutable: [string, unknown, string][] = [
    ['data_not_json', 'not json', 'does not decode to JSON'],
    ['data_not_object', [1, 2], 'not a JSON object'],
    ['unknown_payload', { agentId: 'a', hello: 'world' }, 'neither an event'],
    ['bad_event', event({ eventType: 42 }), 'eventType'],
    ['unknown_event_type', event({ eventType: 'TELEPORTED' }), 'unknown eventType "TELEPORTED"'],
    ['missing_message_id', event({ messageId: undefined }), 'DELIVERED without a messageId'],
    ['missing_message_id', event({ messageId: '   ' }), 'without a messageId'],
    ['bad_message_id', event({ messageId: 'm'.repeat(257) }), 'at most 256'],
    ['bad_message_id', event({ messageId: 'has spaces' }), 'spaces'],
    ['missing_agent_id', event({ agentId: undefined }), 'without an agentId'],
    ['bad_agent_id', event({ agentId: 'agent/with/slashes' }), 'agentId'],
    ['missing_event_id', event({ eventId: undefined }), 'without an eventId'],
  ];

  it.each(unroutable)('marks %s unroutable (%#), with a message naming what is wrong', (reason, data, message) => {
    const env = reason === 'missing_event_id' ? envelope({ messageId: undefined }) : envelope();
    const result = classify(data, { env });
    expect(result).toMatchObject({ kind: 'unroutable', reason });
    if (result.kind === 'unroutable') expect(result.message).toContain(message);
  });

  it('covers every unroutable reason above', () => {
    expect(new Set(unroutable.map(([reason]) => reason))).toEqual(new Set(UNROUTABLE_REASONS));
  });

  it('quotes at most 64 characters of an unknown eventType', () => {
    const result = classify(event({ eventType: 'X'.repeat(500) }));
    expect(result.kind === 'unroutable' && result.message.length).toBeLessThan(100);
  });
});

describe('decodeBase64', () => {
  it.each([
    ['e30=', '{}'],
    ['e30', '{}'],
    ['-_8', Buffer.from([0xfb, 0xff]).toString()],
  ])('decodes %s', (text, want) => {
    expect(decodeBase64(text)?.toString()).toBe(want);
  });
  it.each(['not base64!', 'e3=0', 'a', 'e31='])('refuses %s', (text) => {
    expect(decodeBase64(text)).toBeNull();
  });
});
