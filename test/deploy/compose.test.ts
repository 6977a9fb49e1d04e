// The deployment files can't run here (no Docker engine), so their promises are checked by reading
// them: docker-compose.yml sets only variables config/index.ts knows and creates exactly contract.ts's
// search attributes; the README's compose services exist; .env.example lists every variable with its
// default; the Dockerfile is glibc-based, non-root and loads the prebuilt workflow bundle.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema } from '../../config/index.ts';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: (string | { path: string; required?: boolean })[] | string;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string | string[] };
  ports?: (string | { target: number; published?: string | number })[];
  volumes?: (string | { type: string; source?: string; target: string; read_only?: boolean })[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
}

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const services = compose.services;
const configKeys = Object.keys(envSchema.shape).sort();

/** Ours = built from the repo's Dockerfile. */
const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const i = entry.indexOf('=');
      return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

const commandText = (s: ComposeService) => [s.entrypoint ?? [], s.command ?? []].flat().join(' ');

describe('docker-compose.yml', () => {
  it('builds our worker, webhook, HTTP API and codec server from the Dockerfile, each one part of service/main.ts', () => {
    expect(ours.map(([name]) => name).sort()).toEqual(['api', 'codec', 'temporal-setup', 'webhook', 'worker']);
    expect(services['temporal-setup']?.command).toEqual(['node', 'bin/rbm-guard.js', 'setup']);
    for (const part of ['worker', 'webhook', 'api', 'codec']) {
      expect(services[part]?.command).toEqual(['node', 'service/main.ts', '--only', part]);
    }
    expect(existsSync(new URL('service/main.ts', root))).toBe(true);
  });

  it('worker, webhook and API read the agents file from ./secrets/agents (read-only), where .env.example points RBM_AGENTS_FILE', () => {
    const example = /RBM_AGENTS_FILE=(\/\S+)\/agents\.json/.exec(read('docker-compose.yml'))?.[1];
    expect(example).toBe('/run/rbm-guard/agents');
    for (const part of ['worker', 'webhook', 'api']) {
      expect(services[part]?.volumes, part).toContain(`./secrets/agents:${example}:ro`);
    }
  });

  it.each(ours)('%s sets only variables config/index.ts knows, with values it accepts', (_name, service) => {
    const env = environmentOf(service);
    expect(Object.keys(env).filter((k) => !configKeys.includes(k))).toEqual([]);
    const parsed = envSchema.safeParse(env);
    expect(parsed.success ? [] : parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`)).toEqual([]);
    // Anything else comes from .env, whose template (.env.example) is checked below.
    const files = [service.env_file ?? []].flat().map((f) => (typeof f === 'string' ? f : f.path));
    expect(files.filter((f) => f !== '.env')).toEqual([]);
  });

  it('sets the namespace up with `rbm-guard setup` (contract.ts’s search attributes, client/setup.ts), in the namespace our services use', () => {
    const setup = environmentOf(services['temporal-setup'] ?? {});
    const namespaces = new Set(ours.map(([, s]) => environmentOf(s).TEMPORAL_NAMESPACE ?? 'default'));
    expect(namespaces).toEqual(new Set([setup.TEMPORAL_NAMESPACE ?? 'default']));
    expect(setup.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('starts the worker and the webhook only once the search attributes exist', () => {
    const setup = Object.entries(services).find(([, s]) => commandText(s).includes('bin/rbm-guard.js setup'))?.[0];
    expect(setup).toBeDefined();
    for (const name of ['worker', 'webhook']) {
      expect(services[name]?.depends_on, name).toMatchObject({ [setup ?? '']: { condition: 'service_completed_successfully' } });
    }
  });

  it('runs Temporal from official images: schema by temporal-sql-tool, then the server, then the UI', () => {
    const images = Object.values(services).map((s) => s.image ?? '');
    expect(images.some((i) => i.startsWith('temporalio/server:'))).toBe(true);
    expect(images.some((i) => i.startsWith('temporalio/ui:'))).toBe(true);
    expect(images.some((i) => i.startsWith('postgres:'))).toBe(true);
    expect(images.filter((i) => i.startsWith('temporalio/auto-setup'))).toEqual([]);
    const schemaJob = Object.entries(services).find(([, s]) => commandText(s).includes('temporal-sql-tool'));
    expect(schemaJob?.[1].image).toMatch(/^temporalio\/admin-tools:/);
    expect(services.temporal?.depends_on).toMatchObject({ [schemaJob?.[0] ?? '']: { condition: 'service_completed_successfully' } });
    // Server and tools move together.
    const version = (prefix: string) => images.find((i) => i.startsWith(prefix))?.split(':')[1];
    expect(version('temporalio/admin-tools:')).toBe(version('temporalio/server:'));
  });

  it('health-checks every long-running service, on the ports our config sets', () => {
    for (const name of ['postgresql', 'temporal', 'worker', 'webhook', 'codec']) {
      expect(services[name]?.healthcheck?.test, name).toBeDefined();
    }
    const worker = environmentOf(services.worker ?? {});
    const webhook = environmentOf(services.webhook ?? {});
    expect(String(services.worker?.healthcheck?.test)).toContain(`127.0.0.1:${worker.METRICS_PORT}/metrics`);
    expect(String(services.webhook?.healthcheck?.test)).toContain(`127.0.0.1:${webhook.WEBHOOK_PORT}/readyz`);
    expect(services.webhook?.ports).toContain(`${webhook.WEBHOOK_PORT}:${webhook.WEBHOOK_PORT}`);
    // Metrics never share the public webhook port, and are published on loopback only.
    expect(webhook.WEBHOOK_METRICS_PORT).toBeDefined();
    expect(webhook.WEBHOOK_METRICS_PORT).not.toBe(webhook.WEBHOOK_PORT);
    expect(services.webhook?.ports).toContain(`127.0.0.1:${webhook.WEBHOOK_METRICS_PORT}:${webhook.WEBHOOK_METRICS_PORT}`);
    const codec = environmentOf(services.codec ?? {});
    expect(String(services.codec?.healthcheck?.test)).toContain(`127.0.0.1:${codec.RBM_GUARD_CODEC_PORT}/healthz`);
  });

  it('shares one key ring between every part, and the UI reaches the codec server from its origin', () => {
    const keyFiles = new Set(ours.map(([, s]) => environmentOf(s).RBM_GUARD_ENCRYPTION_KEY_FILE));
    expect(keyFiles.size).toBe(1);
    const codec = environmentOf(services.codec ?? {});
    const ui = environmentOf(services['temporal-ui'] ?? {});
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toMatch(new RegExp(`^http://localhost:${codec.RBM_GUARD_CODEC_PORT}/\\$\\{RBM_GUARD_CODEC_TOKEN`));
    const uiPort = services['temporal-ui']?.ports?.map(String).find((p) => p.endsWith(':8080'))?.split(':').at(-2);
    expect(codec.RBM_GUARD_CODEC_ORIGINS?.split(',')).toContain(`http://localhost:${uiPort}`);
  });
});

describe('README', () => {
  const readme = existsSync(new URL('README.md', root)) ? read('README.md') : undefined;

  // Expected shape: a heading that names docker-compose.yml (any level), and under it a table whose
  // first column is the service name in backticks, e.g.
  //   ### Services in docker-compose.yml
  //   | service | image | what it does |
  //   |---|---|---|
  //   | `temporal` | temporalio/server | the Temporal server on PostgreSQL |
  it.skipIf(readme === undefined)('every service its docker-compose.yml section names exists', () => {
    const lines = (readme ?? '').split('\n');
    const start = lines.findIndex((l) => /^#{1,6} .*docker-compose\.yml/i.test(l));
    expect(start, 'README.md needs a heading naming docker-compose.yml with a table of its services').toBeGreaterThanOrEqual(0);
    const level = /^#+/.exec(lines[start] ?? '')?.[0].length ?? 1;
    const end = lines.findIndex((l, i) => i > start && new RegExp(`^#{1,${level}} `).test(l));
    const section = lines.slice(start + 1, end < 0 ? undefined : end);
    const named = section.map((l) => /^\|\s*`([^`]+)`\s*\|/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
    expect(named.length, 'the section lists services as | `name` | … | rows').toBeGreaterThan(0);
    expect(named.filter((n) => !(n in services))).toEqual([]);
  });
});

describe('.env.example', () => {
  const lines = read('.env.example').split('\n');
  const assignments = lines
    .map((line, index) => ({ index, match: /^#? ?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line) }))
    .filter((a) => a.match !== null)
    .map(({ index, match }) => ({ index, key: match?.[1] ?? '', value: match?.[2] ?? '' }));

  it('lists exactly the variables config/index.ts reads, once each', () => {
    expect(assignments.map((a) => a.key).sort()).toEqual(configKeys);
  });

  it('shows each variable’s default (blank when it has none) under a comment saying what it is', () => {
    const defaults = envSchema.parse({}) as Record<string, unknown>;
    for (const { index, key, value } of assignments) {
      expect(value, key).toBe(defaults[key] === undefined ? '' : String(defaults[key]));
      expect(lines[index - 1], `${key} needs a comment line above it`).toMatch(/^# (?![A-Z][A-Z0-9_]*=).+/);
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const final = stages.at(-1) ?? '';

  it('builds on a glibc Node image, never Alpine', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\d+-(bookworm|trixie)(-slim)?$/m);
    const bases = dockerfile.match(/^(FROM|ARG NODE_IMAGE=).*$/gm) ?? [];
    expect(bases.length).toBeGreaterThan(1);
    expect(bases.filter((line) => /alpine/i.test(line))).toEqual([]);
  });

  it('runs on a supported Node LTS with no tsx at run time (Node strips the types itself)', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(24|26)-/m);
    expect(final).toMatch(/^CMD \["node", "service\/main\.ts"\]$/m);
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; engines: { node: string } };
    expect(Object.keys(pkg.dependencies)).not.toContain('tsx');
    expect(Object.keys(pkg.dependencies)).not.toContain('@temporalio/testing');
    expect(pkg.engines.node).toBe('^24.0.0 || ^26.0.0');
  });

  it('runs as a non-root user and loads the prebuilt workflow bundle', () => {
    expect(final).toMatch(/^USER (?!root\b|0\b)\S+$/m);
    expect(read('package.json')).toContain('"build:workflows": "node bin/run-ts.js scripts/build-workflow-bundle.ts"');
    expect(read('scripts/build-workflow-bundle.ts')).toContain('prebuiltBundlePath');
    expect(read('worker/paths.ts')).toContain("'../dist/workflow-bundle.js'");
    expect(final).toContain('ENV RBM_GUARD_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js');
    for (const [, s] of ours) expect(environmentOf(s).RBM_GUARD_WORKFLOW_BUNDLE).toBe('/app/dist/workflow-bundle.js');
  });

  it('copies only paths that exist, and keeps secrets and local state out of the build context', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => (m[1] ?? '').trim().split(/\s+/).slice(0, -1));
    expect(sources.filter((p) => !existsSync(new URL(p, root)))).toEqual([]);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const path of ['node_modules', '.env', 'secrets', '.tools', '.data']) expect(ignored).toContain(path);
  });
});
