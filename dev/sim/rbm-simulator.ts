// The RBM platform, simulated over real HTTP: the OAuth2 JWT-bearer token exchange (./oauth.ts),
// agentMessages create and revoke (./agent-messages.ts), a per-message delivery model with the
// platform's own TTL (./delivery.ts), injectable faults (./faults.ts), and signed Pub/Sub pushes to
// the webhook (./pubsub.ts). Every answer rbm-protocol.md leaves open is a switch, defaulting to the
// one that hurts the guard most, and the ground truth (what really happened to each message) is kept
// so invariants can be checked afterwards. This module wires the parts and is the one entry point.
//
// Deliberately independent of the code under test: it defines its own constants (scope, audience)
// so a typo on the client side shows up as a failure instead of matching itself.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { AgentMessagesApi } from './agent-messages.ts';
import { DeliveryModel, toTruth } from './delivery.ts';
import { FaultInjector } from './faults.ts';
import { OAuthServer } from './oauth.ts';
import { Partners, SIM_REGIONS } from './partners.ts';
import { Pusher } from './pubsub.ts';
import type {
  ApiRequestRecord,
  DeliveryPlan,
  MessageTruth,
  PushOptions,
  PushRecord,
  RandomFaults,
  RbmEvent,
  RbmFault,
  RbmSimulator,
  RbmSimulatorOptions,
  RbmSimulatorStats,
  RegisterSentInput,
  ServiceAccountKey,
  SimRegion,
} from './rbm-types.ts';
import { googleError, SimRuntime } from './runtime.ts';

export * from './rbm-types.ts';
export { pubsubPush, serverEvent, signEventData, userEvent, userMessage, verificationRequest } from './pubsub.ts';
export { GOOGLE_TOKEN_AUDIENCE, RBM_SCOPE } from './oauth.ts';

class Simulator implements RbmSimulator {
  private baseUrl = '';
  private readonly app: FastifyInstance;
  private readonly rt = new SimRuntime();
  private readonly faults: FaultInjector;
  private readonly oauth: OAuthServer;
  private readonly partners: Partners;
  private readonly pusher: Pusher;
  private readonly delivery: DeliveryModel;
  private readonly api: AgentMessagesApi;
  private readonly tempDirs: string[] = [];

  constructor(app: FastifyInstance, options: RbmSimulatorOptions) {
    this.app = app;
    this.faults = new FaultInjector(this.rt, options.random);
    this.oauth = new OAuthServer(this.rt, this.faults, options.tokenLifetimeSeconds);
    this.partners = new Partners(this.oauth, options);
    this.pusher = new Pusher(this.rt, options.clientToken ?? randomBytes(16).toString('hex'), { ...options, tokenFor: (agentId) => this.partners.eventToken(agentId) });
    this.delivery = new DeliveryModel(this.rt, this.faults, this.pusher, options);
    this.api = new AgentMessagesApi(this.rt, this.oauth, this.partners, this.faults, this.delivery, options);
  }

  get clientToken(): string {
    return this.pusher.clientToken;
  }

  get serviceAccountKey(): ServiceAccountKey {
    return this.oauth.serviceAccountKey;
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  get url(): string {
    return this.baseUrl;
  }

  get regionalUrl(): string {
    return `${this.baseUrl}/{region}`;
  }

  get tokenUrl(): string {
    return `${this.baseUrl}/token`;
  }

  routes(): void {
    const app = this.app;
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    // Every error, including fastify's own (bad JSON, body too large), in Google's shape.
    app.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
      const code = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
      return this.rt.send(reply, googleError(code, code === 500 ? 'Internal error encountered.' : error.message));
    });
    app.setNotFoundHandler((_req, reply) => this.rt.send(reply, googleError(404, 'Not found.')));

    app.post('/token', (req, reply) => this.oauth.tokenRoute(req, reply));
    // The plain base URL (region null) and each region's host, as the path prefix /{region}.
    for (const region of [null, ...SIM_REGIONS] as (SimRegion | null)[]) {
      const prefix = region === null ? '' : `/${region}`;
      const config = { region };
      app.post(`${prefix}/v1/phones/:phone/agentMessages`, { config }, (req, reply) => this.api.createRoute(req, reply, region));
      app.delete(`${prefix}/v1/phones/:phone/agentMessages/:messageId`, { config }, (req, reply) => this.api.revokeRoute(req, reply, region));
    }
    app.addHook('onResponse', async (req, reply) => {
      const { region } = req.routeOptions.config as { region?: SimRegion | null };
      if (region !== undefined) this.partners.record(req, reply, region);
    });
  }

  // --- Public controls -------------------------------------------------------------------------

  writeServiceAccountKeyFile(dir?: string, partner?: string): string {
    return this.oauth.writeKeyFile(dir, this.tempDirs, partner === undefined ? undefined : this.partners.key(partner));
  }

  partnerKey(partner: string): ServiceAccountKey {
    return this.partners.key(partner);
  }

  partnerClientToken(partner: string): string {
    return this.partners.clientToken(partner);
  }

  tokenExchanges(): Record<string, number> {
    return Object.fromEntries(this.oauth.issuedPerAccount);
  }

  requests(): ApiRequestRecord[] {
    return this.partners.requests();
  }

  setWebhookUrl(url: string | undefined): void {
    this.pusher.webhookUrl = url;
  }

  setOnEvent(onEvent: ((event: RbmEvent) => Promise<void>) | undefined): void {
    this.pusher.onEvent = onEvent;
  }

  plan(messageId: string, plan: Partial<DeliveryPlan>): void {
    this.delivery.plan(messageId, plan);
  }

  registerSent(input: RegisterSentInput): void {
    this.delivery.registerSent(input);
  }

  deliver(messageId: string): boolean {
    return this.delivery.deliver(messageId);
  }

  injectRevokeFaults(messageIdOrAll: string, faults: RbmFault[]): void {
    this.faults.enqueue('revoke', messageIdOrAll, faults);
  }

  injectCreateFaults(messageIdOrAll: string, faults: RbmFault[]): void {
    this.faults.enqueue('create', messageIdOrAll, faults);
  }

  injectTokenFaults(faults: RbmFault[]): void {
    this.faults.enqueue('token', '*', faults);
  }

  setRandomFaults(random: RandomFaults | undefined): void {
    this.faults.setRandom(random);
  }

  setAgentDenied(agentId: string, denied: boolean): void {
    if (denied) this.api.deniedAgents.add(agentId);
    else this.api.deniedAgents.delete(agentId);
  }

  setNoRcs(phone: string, noRcs: boolean): void {
    if (noRcs) this.api.noRcsPhones.add(phone);
    else this.api.noRcsPhones.delete(phone);
  }

  expireTokens(): void {
    this.oauth.expireTokens();
  }

  pushEvent(event: RbmEvent, options: PushOptions = {}): Promise<PushRecord> {
    const messageId = 'messageId' in event ? event.messageId : undefined;
    const message = messageId ? this.delivery.messages.get(messageId) : undefined;
    // An explicit push always goes over HTTP, even when model events go to the callback.
    return this.rt.track(this.pusher.pushWithRetry(event, options, message, 'webhook'));
  }

  verifyWebhook(options: { secret?: string; clientToken?: string } = {}): Promise<{ status: number; body: string }> {
    return this.pusher.verifyWebhook(options);
  }

  truth(messageId: string): MessageTruth | undefined {
    const message = this.delivery.messages.get(messageId);
    return message ? toTruth(message) : undefined;
  }

  allTruth(): MessageTruth[] {
    return [...this.delivery.messages.values()].map(toTruth);
  }

  pushes(): PushRecord[] {
    return [...this.pusher.all];
  }

  stats(): RbmSimulatorStats {
    return structuredClone(this.rt.counters);
  }

  settled(): Promise<void> {
    return this.rt.settled();
  }

  async close(): Promise<void> {
    if (!this.rt.beginClose()) return;
    this.pusher.releaseAll();
    await this.rt.settled();
    await this.app.close();
    for (const dir of this.tempDirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts the simulator on 127.0.0.1 with an OS-chosen port. */
export async function startRbmSimulator(options: RbmSimulatorOptions = {}): Promise<RbmSimulator> {
  // forceCloseConnections: close() must not wait for hung requests or keep-alive sockets.
  // RBM message ids run to hundreds of characters (percent-encoded, several times that): the router must take them.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 256 * 1024, routerOptions: { maxParamLength: 4096 } });
  const simulator = new Simulator(app, options);
  simulator.routes();
  // A deep accept queue: a benchmark opens thousands of connections at once.
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('simulator: no TCP address');
  simulator.setBaseUrl(`http://127.0.0.1:${address.port}`);
  return simulator;
}
