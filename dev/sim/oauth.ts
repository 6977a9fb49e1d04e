// Google's OAuth2 JWT-bearer exchange, as RBM clients use it: service-account keys (generated here:
// the default one, and one per partner account), the token endpoint that checks the signed assertion
// (signature, audience, scope, lifetime), and the bearer check on every API call, which says whose
// key the token came from. Its own constants, so a typo on the client side fails here.
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { FaultInjector } from './faults.ts';
import type { ServiceAccountKey } from './rbm-types.ts';
import { googleError, type SimRuntime } from './runtime.ts';

export const RBM_SCOPE = 'https://www.googleapis.com/auth/rcsbusinessmessaging';
/** google-auth-library signs every assertion for this audience, wherever the request really goes. */
export const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const jwtHeader = z.object({ alg: z.string(), kid: z.string().optional() });
const jwtClaims = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  scope: z.string().optional(),
  exp: z.number(),
  iat: z.number(),
});

interface ServiceAccount {
  email: string;
  keyId: string;
  publicKey: KeyObject;
}

export class OAuthServer {
  /** The default account's key. */
  readonly serviceAccountKey: ServiceAccountKey;
  private readonly accounts = new Map<string, ServiceAccount>();
  /** Access token → its expiry and the account (client_email) it was issued to. */
  private readonly tokens = new Map<string, { expiresAt: number; account: string }>();
  /** Tokens issued per account (client_email): a client's token cache is per key. */
  readonly issuedPerAccount = new Map<string, number>();
  /** The account whose token authorised each API request. */
  private readonly accountOf = new WeakMap<FastifyRequest, string>();

  private readonly rt: SimRuntime;
  private readonly faults: FaultInjector;
  private readonly tokenLifetimeSeconds: number | undefined;

  constructor(rt: SimRuntime, faults: FaultInjector, tokenLifetimeSeconds: number | undefined) {
    this.rt = rt;
    this.faults = faults;
    this.tokenLifetimeSeconds = tokenLifetimeSeconds;
    this.serviceAccountKey = this.addAccount('rbm-guard-sim', 'rbm-sim');
  }

  /** A new service account with its own RSA key (a partner's, in its own project). */
  addAccount(name: string, project: string): ServiceAccountKey {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyId = randomBytes(20).toString('hex');
    const email = `${name}@${project}.iam.gserviceaccount.com`;
    this.accounts.set(email, { email, keyId, publicKey });
    return {
      type: 'service_account',
      project_id: project,
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: String(100000000000000000000n + BigInt(randomBytes(6).readUIntBE(0, 6))),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: GOOGLE_TOKEN_AUDIENCE,
      universe_domain: 'googleapis.com',
    };
  }

  async tokenRoute(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    this.rt.counters.tokenRequests++;
    const form = z.object({ grant_type: z.string(), assertion: z.string() }).safeParse(req.body);
    if (!form.success || form.data.grant_type !== JWT_BEARER_GRANT) {
      this.rt.counters.tokensRejected++;
      return this.rt.send(reply, {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type or missing assertion.' },
      });
    }
    return this.faults.respond('token', undefined, reply, () => {
      const checked = this.checkAssertion(form.data.assertion);
      if ('problem' in checked) {
        this.rt.counters.tokensRejected++;
        return { status: 400, body: { error: 'invalid_grant', error_description: checked.problem } };
      }
      const token = `ya29.sim.${randomBytes(24).toString('base64url')}`;
      const lifetime = this.tokenLifetimeSeconds ?? 3599;
      this.tokens.set(token, { expiresAt: Date.now() + lifetime * 1000, account: checked.account });
      this.issuedPerAccount.set(checked.account, (this.issuedPerAccount.get(checked.account) ?? 0) + 1);
      this.rt.counters.tokensIssued++;
      return { status: 200, body: { access_token: token, expires_in: lifetime, token_type: 'Bearer' } };
    });
  }

  /** The account a good assertion is for, or why it is refused. */
  private checkAssertion(assertion: string): { account: string } | { problem: string } {
    const problem = this.assertionProblem(assertion);
    if (problem) return { problem };
    const claims = parseBase64Json(assertion.split('.')[1] ?? '') as { iss: string };
    return { account: claims.iss };
  }

  /** Returns why the assertion is refused, or undefined if it is good. */
  private assertionProblem(assertion: string): string | undefined {
    const [headerPart, claimsPart, signaturePart, ...rest] = assertion.split('.');
    if (!headerPart || !claimsPart || !signaturePart || rest.length) return 'Invalid JWT: malformed assertion.';
    const header = jwtHeader.safeParse(parseBase64Json(headerPart));
    const claims = jwtClaims.safeParse(parseBase64Json(claimsPart));
    if (!header.success || !claims.success) return 'Invalid JWT: unreadable header or claims.';
    if (header.data.alg !== 'RS256') return 'Invalid JWT: alg must be RS256.';
    const account = this.accounts.get(claims.data.iss);
    if (!account) return 'Invalid grant: account not found';
    if (header.data.kid && header.data.kid !== account.keyId) return 'Invalid JWT Signature.';
    const signed = Buffer.from(`${headerPart}.${claimsPart}`);
    if (!verify('RSA-SHA256', signed, account.publicKey, Buffer.from(signaturePart, 'base64url'))) {
      return 'Invalid JWT Signature.';
    }
    const audiences = [claims.data.aud].flat();
    if (!audiences.includes(GOOGLE_TOKEN_AUDIENCE)) return 'Invalid JWT: aud must be the token endpoint.';
    if (!(claims.data.scope ?? '').split(' ').includes(RBM_SCOPE)) return 'Invalid JWT: missing the RBM scope.';
    const now = Date.now() / 1000;
    const { exp, iat } = claims.data;
    if (exp <= now || iat > now + 300 || exp - iat > 3600) {
      return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.';
    }
    return undefined;
  }

  /** The account (client_email) whose token authorised the request; undefined once answered 401. */
  authorize(req: FastifyRequest, reply: FastifyReply): string | undefined {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const issued = token ? this.tokens.get(token) : undefined;
    if (issued !== undefined && issued.expiresAt > Date.now()) {
      this.accountOf.set(req, issued.account);
      return issued.account;
    }
    this.rt.counters.unauthenticated++;
    this.rt.send(
      reply,
      googleError(
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      ),
    );
    return undefined;
  }

  /** The account that authorised a request (undefined: none did). */
  accountFor(req: FastifyRequest): string | undefined {
    return this.accountOf.get(req);
  }

  /** Invalidates every issued access token (the next API call gets 401). */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** Writes a key (default: the default account's) as JSON (mode 0600) and returns its path; a temp folder is added to tempDirs. */
  writeKeyFile(dir: string | undefined, tempDirs: string[], key: ServiceAccountKey = this.serviceAccountKey): string {
    let target = dir;
    if (!target) {
      target = mkdtempSync(join(tmpdir(), 'rbm-sim-key-'));
      tempDirs.push(target);
    }
    const path = join(target, `${key.project_id}-${key.private_key_id.slice(0, 12)}.json`);
    writeFileSync(path, JSON.stringify(key, null, 2), { mode: 0o600 });
    return path;
  }
}

function parseBase64Json(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}
