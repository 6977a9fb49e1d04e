// Per-agent RBM settings. RBM pins each agent to one region for life, and an aggregator's agents live
// under several partner accounts, each with its own service-account key and webhook client token.
// RBM_AGENTS_FILE names a JSON file that says, for every agent, which of each it uses:
//
//   { "partners": { "acme": { "keyFile": "acme-key.json", "clientTokens": ["…"] } },
//     "agents":   { "brand-x": { "partner": "acme", "region": "europe" } } }
//
// A relative keyFile is read from the agents file's folder. Without the file, the single variables
// (GOOGLE_APPLICATION_CREDENTIALS, RBM_REGION, RBM_CLIENT_TOKEN) serve every agent, as they always did.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { agentIdProblem, normalizeAgentId } from '../workflows/names.ts';
import { ConfigError } from './errors.ts';
import type { Config } from './index.ts';

export const RBM_REGIONS = ['global', 'us', 'europe', 'asia'] as const;
export type RbmRegion = (typeof RBM_REGIONS)[number];

const VARIABLE = 'RBM_AGENTS_FILE';
const PARTNER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const agentsFileSchema = z
  .strictObject({
    partners: z.record(
      z.string(),
      z.strictObject({
        keyFile: z.string().trim().min(1, 'the partner\u2019s service-account key file'),
        clientTokens: z.array(z.string().trim().min(1, 'must not be empty')).min(1, 'at least one webhook client token'),
      }),
    ),
    agents: z.record(
      z.string(),
      z.strictObject({
        partner: z.string().min(1),
        region: z.enum(RBM_REGIONS, { error: `expected one of ${RBM_REGIONS.join(', ')}` }),
      }),
    ),
  })
  .superRefine((file, ctx) => {
    for (const name of Object.keys(file.partners)) {
      if (!PARTNER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: ['partners', name], message: 'a partner name is 1-64 letters, digits, . _ - (starting with a letter or digit)' });
    }
    const seen = new Map<string, string>();
    for (const [id, agent] of Object.entries(file.agents)) {
      const problem = agentIdProblem(id);
      if (problem) ctx.addIssue({ code: 'custom', path: ['agents', id], message: `not an agent id: ${problem}` });
      const bare = normalizeAgentId(id);
      const twin = seen.get(bare);
      if (twin !== undefined) ctx.addIssue({ code: 'custom', path: ['agents', id], message: `the same agent as "${twin}"` });
      seen.set(bare, id);
      if (!Object.hasOwn(file.partners, agent.partner)) {
        const known = Object.keys(file.partners).join(', ') || 'none';
        ctx.addIssue({ code: 'custom', path: ['agents', id, 'partner'], message: `no partner "${agent.partner}" in partners (${known})` });
      }
    }
    if (Object.keys(file.agents).length === 0) ctx.addIssue({ code: 'custom', path: ['agents'], message: 'lists no agent' });
  });

/** The settings of one agent: whose key signs its calls, which host they go to, whose tokens sign its events. */
export interface AgentSettings {
  /** The partner's name; `default` for the single variables. */
  partner: string;
  /** The service-account key file (absolute when it came from the agents file). */
  keyFile: string | undefined;
  region: RbmRegion;
  clientTokens: readonly string[];
}

export interface AgentDirectory {
  /** The agents file, or undefined: the single variables serve every agent. */
  readonly file: string | undefined;
  /** The agents the file lists (bare ids); undefined without a file, where every agent is served. */
  readonly agents: ReadonlySet<string> | undefined;
  /** Every partner's client tokens: the webhook's verification handshake accepts any of them. */
  readonly allClientTokens: readonly string[];
  /** An agent's settings (bare or `@rbm.goog` id); undefined when the file does not list it. */
  lookup(agentId: string): AgentSettings | undefined;
}

export type AgentsConfig = Pick<Config, 'RBM_AGENTS_FILE'> &
  Partial<Pick<Config, 'GOOGLE_APPLICATION_CREDENTIALS' | 'RBM_REGION' | 'RBM_CLIENT_TOKEN'>>;

/** Comma-separated tokens (several at once during a rotation). */
export function splitTokens(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The directory the configuration describes; reads RBM_AGENTS_FILE (ConfigError naming the field if bad). */
export function agentDirectory(config: AgentsConfig): AgentDirectory {
  if (!config.RBM_AGENTS_FILE) {
    const settings: AgentSettings = {
      partner: 'default',
      keyFile: config.GOOGLE_APPLICATION_CREDENTIALS,
      region: config.RBM_REGION ?? 'global',
      clientTokens: splitTokens(config.RBM_CLIENT_TOKEN),
    };
    return { file: undefined, agents: undefined, allClientTokens: settings.clientTokens, lookup: () => settings };
  }
  const path = config.RBM_AGENTS_FILE;
  const file = readAgentsFile(path);
  const folder = dirname(resolve(path));
  const byAgent = new Map<string, AgentSettings>();
  for (const [id, agent] of Object.entries(file.agents)) {
    const partner = file.partners[agent.partner]!;
    byAgent.set(normalizeAgentId(id), {
      partner: agent.partner,
      keyFile: resolve(folder, partner.keyFile),
      region: agent.region,
      clientTokens: partner.clientTokens,
    });
  }
  return {
    file: path,
    agents: new Set(byAgent.keys()),
    allClientTokens: [...new Set(Object.values(file.partners).flatMap((p) => p.clientTokens))],
    lookup: (agentId) => byAgent.get(normalizeAgentId(agentId)),
  };
}

/** What is wrong with the agents file, as loadConfig reports it (nothing: it is good). */
export function agentsFileIssues(path: string): { variable: string; message: string }[] {
  try {
    readAgentsFile(path);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
}

function readAgentsFile(path: string): z.infer<typeof agentsFileSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof SyntaxError ? `not JSON (${error.message})` : `cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
    throw new ConfigError([{ variable: VARIABLE, message: `${path}: ${reason}` }]);
  }
  const parsed = agentsFileSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  // One line per bad field, named by its path in the file: `agents.brand-x.region: expected one of …`.
  throw new ConfigError(
    parsed.error.issues.map((i) => ({ variable: VARIABLE, message: `${i.path.map(String).join('.') || '(file)'}: ${i.message}` })),
  );
}
