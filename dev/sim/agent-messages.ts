// phones.agentMessages create and delete, as the simulator answers them: request validation in
// Google's error shape, a reused messageId ignored (or 409), 403 for a denied agent, 404 for a phone
// without RCS; and a DELETE answers 200 only for a pending message — delivered, already revoked,
// expired by its TTL (even a moment ago) or never created all answer 404, the answer that hurts the
// guard most (`unknownRevoke` / `revokeOfRevoked` keep the kind 200 as switches).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { E164_PATTERN } from '../../workflows/names.ts';
import type { DeliveryModel, SimMessage } from './delivery.ts';
import type { FaultInjector } from './faults.ts';
import type { OAuthServer } from './oauth.ts';
import type { Partners } from './partners.ts';
import type { RbmSimulatorOptions, SimRegion } from './rbm-types.ts';
import { googleError, type Outcome, type SimRuntime } from './runtime.ts';

const MAX_TTL_MS = 15 * 24 * 60 * 60 * 1000;
const TRAFFIC_TYPES = ['AUTHENTICATION', 'TRANSACTION', 'PROMOTION', 'SERVICEREQUEST', 'ACKNOWLEDGEMENT'] as const;

const createQuery = z.object({ messageId: z.string().min(1).max(512), agentId: z.string().min(1) });
const revokeQuery = z.object({ agentId: z.string().min(1) });
const phoneParams = z.object({ phone: z.string().regex(E164_PATTERN, 'phone must be E.164') });
const revokeParams = phoneParams.extend({ messageId: z.string().min(1) });

const agentMessageBody = z
  .strictObject({
    contentMessage: z
      .strictObject({
        text: z.string().min(1).max(3072).optional(),
        richCard: z.record(z.string(), z.unknown()).optional(),
        contentInfo: z.record(z.string(), z.unknown()).optional(),
        uploadedRbmFile: z.record(z.string(), z.unknown()).optional(),
        suggestions: z.array(z.unknown()).max(11).optional(),
      })
      .refine(
        (c) => [c.text, c.richCard, c.contentInfo, c.uploadedRbmFile].filter((v) => v !== undefined).length === 1,
        'contentMessage needs exactly one of text, richCard, contentInfo, uploadedRbmFile',
      ),
    messageTrafficType: z.enum(TRAFFIC_TYPES).optional(),
    expireTime: z.iso.datetime({ offset: true }).optional(),
    ttl: z.string().regex(/^\d+(\.\d{1,9})?s$/, 'ttl must be a duration like "3.5s"').optional(),
  })
  .refine((b) => !(b.expireTime && b.ttl), 'at most one of expireTime and ttl');

export class AgentMessagesApi {
  readonly deniedAgents: Set<string>;
  readonly noRcsPhones: Set<string>;

  private readonly rt: SimRuntime;
  private readonly oauth: OAuthServer;
  private readonly partners: Partners;
  private readonly faults: FaultInjector;
  private readonly delivery: DeliveryModel;
  private readonly options: Pick<RbmSimulatorOptions, 'reusedMessageId' | 'unknownRevoke' | 'revokeOfRevoked' | 'deniedAgents' | 'noRcsPhones'>;

  constructor(rt: SimRuntime, oauth: OAuthServer, partners: Partners, faults: FaultInjector, delivery: DeliveryModel, options: Pick<RbmSimulatorOptions, 'reusedMessageId' | 'unknownRevoke' | 'revokeOfRevoked' | 'deniedAgents' | 'noRcsPhones'>) {
    this.rt = rt;
    this.oauth = oauth;
    this.partners = partners;
    this.faults = faults;
    this.delivery = delivery;
    this.options = options;
    this.deniedAgents = new Set(options.deniedAgents);
    this.noRcsPhones = new Set(options.noRcsPhones);
  }

  /** `region`: the regional host the request reached (null: the plain base URL). */
  async createRoute(req: FastifyRequest, reply: FastifyReply, region: SimRegion | null = null): Promise<void> {
    this.rt.counters.creates++;
    const account = this.oauth.authorize(req, reply);
    if (account === undefined) return;
    const params = phoneParams.safeParse(req.params);
    const query = createQuery.safeParse(req.query);
    const body = agentMessageBody.safeParse(req.body);
    if (!params.success || !query.success || !body.success) {
      const issue = (params.error ?? query.error ?? body.error)?.issues[0]?.message ?? 'bad request';
      return this.rt.send(reply, googleError(400, `Invalid argument: ${issue}`));
    }
    const { agentId, messageId } = query.data;
    const { phone } = params.data;
    if (this.deniedAgents.has(agentId)) return this.rt.send(reply, googleError(403, 'The caller does not have permission'));
    const refused = this.partners.refusal(account, agentId, region);
    if (refused) return this.rt.send(reply, refused);

    const now = Date.now();
    let expireAt: number | undefined;
    if (body.data.expireTime) expireAt = Date.parse(body.data.expireTime);
    if (body.data.ttl) expireAt = now + parseFloat(body.data.ttl) * 1000;
    if (expireAt !== undefined && (expireAt <= now || expireAt - now > MAX_TTL_MS)) {
      return this.rt.send(reply, googleError(400, 'Invalid argument: expiry must be in the future and at most 15 days away.'));
    }

    return this.faults.respond('create', messageId, reply, () => {
      if (this.noRcsPhones.has(phone)) return googleError(404, 'Requested entity was not found.');
      const existing = this.delivery.messages.get(messageId);
      if (existing) {
        // Documented: a reused messageId is ignored. 'conflict' models providers that refuse it.
        if (this.options.reusedMessageId === 'conflict') return googleError(409, 'Requested entity already exists');
        return { status: 200, body: existing.createdBody ?? {} };
      }
      const response = {
        name: `phones/${phone}/agentMessages/${messageId}`,
        sendTime: new Date(now).toISOString(),
        contentMessage: body.data.contentMessage,
        ...(body.data.messageTrafficType ? { messageTrafficType: body.data.messageTrafficType } : {}),
        ...(expireAt !== undefined ? { expireTime: new Date(expireAt).toISOString() } : {}),
      };
      const message = this.delivery.add({ agentId, messageId, phone, origin: 'api', sentAt: now, expireAt });
      message.text = body.data.contentMessage.text;
      message.createdBody = response;
      this.rt.counters.createsAccepted++;
      return { status: 200, body: response };
    });
  }

  async revokeRoute(req: FastifyRequest, reply: FastifyReply, region: SimRegion | null = null): Promise<void> {
    this.rt.counters.revokes++;
    const account = this.oauth.authorize(req, reply);
    if (account === undefined) return;
    const params = revokeParams.safeParse(req.params);
    const query = revokeQuery.safeParse(req.query);
    if (!params.success || !query.success) {
      const issue = (params.error ?? query.error)?.issues[0]?.message ?? 'bad request';
      return this.rt.send(reply, googleError(400, `Invalid argument: ${issue}`));
    }
    const { messageId } = params.data;
    const { agentId } = query.data;
    const message = this.delivery.messages.get(messageId);
    const known = message && message.agentId === agentId ? message : undefined;
    if (known) known.revokeCalls++;
    if (this.deniedAgents.has(agentId)) {
      known?.revokeAnswers.push(403);
      return this.rt.send(reply, googleError(403, 'The caller does not have permission'));
    }
    // Another partner's token, or another region's host: the message is not touched.
    const refused = this.partners.refusal(account, agentId, region);
    if (refused) {
      known?.revokeAnswers.push(refused.status);
      return this.rt.send(reply, refused);
    }
    return this.faults.respond(
      'revoke',
      messageId,
      reply,
      () => this.revoke(known),
      (answer) => known?.revokeAnswers.push(answer),
    );
  }

  /** The revoke itself, as the platform performs it. */
  private revoke(message: SimMessage | undefined): Outcome {
    const notFound = googleError(404, 'Requested entity was not found.');
    if (!message) {
      this.rt.counters.revokeUnknown++;
      return this.options.unknownRevoke === 200 ? { status: 200, body: {} } : notFound;
    }
    // A TTL that lapsed a moment ago counts even if its timer has not fired yet; a TTL race lands now.
    if (message.state === 'pending' && message.expireAt !== undefined && message.expireAt <= Date.now()) this.delivery.expire(message);
    if (message.state === 'pending' && message.plan.ttlRacesRevoke && message.expireAt !== undefined) {
      this.rt.counters.ttlRaces++;
      this.delivery.expire(message, 'revoked');
    }
    if (message.state === 'delivered') {
      this.rt.counters.revokeAlreadyDelivered++;
      return notFound;
    }
    if (message.state === 'revoked') {
      this.rt.counters.revokeOfGone++;
      return this.options.revokeOfRevoked === 200 ? { status: 200, body: {} } : notFound;
    }
    const race = message.plan.raceRevoke;
    if (race) {
      // The phone took the message while the revoke was on its way.
      this.rt.counters.raceRevokes++;
      this.delivery.markDelivered(message);
      if (race === 404) this.rt.counters.revokeAlreadyDelivered++;
      return race === 200 ? { status: 200, body: {} } : notFound;
    }
    this.delivery.markRevoked(message);
    this.rt.counters.revoked++;
    return { status: 200, body: {} };
  }

}
