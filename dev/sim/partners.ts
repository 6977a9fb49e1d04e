// Partner accounts and regions, as an aggregator meets them: each partner has its own service-account
// key and webhook client token and owns its agents, each pinned to one region. The API refuses (403)
// a call for an agent made with another account's token, and (404) a call that reached another
// region's host. Every agentMessages request is logged with the host (region) it reached and the
// account its token came from, so a test can see where each call went.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OAuthServer } from './oauth.ts';
import type { ApiRequestRecord, RbmSimulatorOptions, ServiceAccountKey, SimRegion } from './rbm-types.ts';
import { googleError, type Outcome } from './runtime.ts';

export const SIM_REGIONS: readonly SimRegion[] = ['global', 'us', 'europe', 'asia'];
/** Oldest entries are dropped past this: a benchmark makes millions of calls. */
const MAX_LOG = 10_000;

interface Partner {
  key: ServiceAccountKey;
  clientToken: string;
}

const bareAgentId = (agentId: string) => agentId.replace(/@rbm\.goog$/i, '');

export class Partners {
  private readonly partners = new Map<string, Partner>();
  /** Agent (bare id) → its partner's account and its region. */
  private readonly owners = new Map<string, { partner: string; account: string; region: SimRegion }>();
  private readonly log: ApiRequestRecord[] = [];
  private readonly oauth: OAuthServer;

  constructor(oauth: OAuthServer, options: Pick<RbmSimulatorOptions, 'partners'>) {
    this.oauth = oauth;
    for (const [name, partner] of Object.entries(options.partners ?? {})) {
      const key = oauth.addAccount(`rbm-partner-${name}`, `rbm-sim-${name}`);
      this.partners.set(name, { key, clientToken: partner.clientToken ?? randomBytes(16).toString('hex') });
      for (const [agentId, region] of Object.entries(partner.agents)) {
        this.owners.set(bareAgentId(agentId), { partner: name, account: key.client_email, region });
      }
    }
  }

  private partner(name: string): Partner {
    const partner = this.partners.get(name);
    if (!partner) throw new Error(`simulator: no partner "${name}" (options.partners)`);
    return partner;
  }

  key(name: string): ServiceAccountKey {
    return this.partner(name).key;
  }

  clientToken(name: string): string {
    return this.partner(name).clientToken;
  }

  /** The token that signs an agent's events: its partner's, or undefined for the default account's agents. */
  eventToken(agentId: string): string | undefined {
    const owner = this.owners.get(bareAgentId(agentId));
    return owner ? this.partner(owner.partner).clientToken : undefined;
  }

  /**
   * Why this account may not act for this agent on this host, as the platform answers it; undefined:
   * it may. Agents no partner owns belong to the default account, reachable on any host.
   */
  refusal(account: string, agentId: string, region: SimRegion | null): Outcome | undefined {
    const owner = this.owners.get(bareAgentId(agentId));
    const expected = owner?.account ?? this.oauth.serviceAccountKey.client_email;
    if (account !== expected) return googleError(403, 'The caller does not have permission');
    // The agent lives in one region: another region's host does not know it.
    if (owner && region !== null && region !== owner.region) return googleError(404, 'Requested entity was not found.');
    return undefined;
  }

  /** Logs an answered agentMessages request (the onResponse hook). */
  record(req: FastifyRequest, reply: FastifyReply, region: SimRegion | null): void {
    const query = req.query as { agentId?: unknown } | undefined;
    const params = req.params as { messageId?: unknown } | undefined;
    const queryMessageId = (req.query as { messageId?: unknown } | undefined)?.messageId;
    const messageId = params?.messageId ?? queryMessageId;
    this.log.push({
      method: req.method,
      region,
      agentId: typeof query?.agentId === 'string' ? query.agentId : null,
      messageId: typeof messageId === 'string' ? messageId : null,
      account: this.oauth.accountFor(req) ?? null,
      status: reply.statusCode,
    });
    // Trimmed in batches: a shift per request would cost a benchmark dearly.
    if (this.log.length >= 2 * MAX_LOG) this.log.splice(0, MAX_LOG);
  }

  requests(): ApiRequestRecord[] {
    return this.log.slice(-MAX_LOG).map((r) => ({ ...r }));
  }
}
