// The compose stack and the PostgreSQL engine run the same Temporal: the same pinned version, the
// same server config file (config/temporal/server.yaml, mounted into the image) whose storage and
// server settings are literal — variables carry only where, who and which ports — the same dynamic
// config, and the same schema steps. And the compose stack faces the world through the webhook only.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pinnedVersions, SCHEMA_STEPS, SERVICE_PORTS } from '../../service/engine/postgres.ts';

interface Service {
  image?: string;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null>;
  configs?: { source: string; target: string }[];
  ports?: string[];
  healthcheck?: { test?: string | string[] };
}
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; configs: Record<string, { file?: string }> };
const services = compose.services;
const temporal = services.temporal!;
const env = Object.fromEntries(Object.entries(temporal.environment ?? {}).map(([k, v]) => [k, String(v)]));
const template = read('config/temporal/server.yaml');
const templateVariables = [...new Set([...template.matchAll(/env "([A-Z_]+)"/g)].map((m) => m[1]!))].sort();
const commandText = (s: Service) => [s.entrypoint ?? [], s.command ?? []].flat().join(' ');

describe('compose and the PostgreSQL engine: one Temporal', () => {
  it('runs the pinned server version (config/temporal/versions.env), with admin-tools of the same release', () => {
    const version = pinnedVersions().TEMPORAL_SERVER_VERSION;
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(temporal.image).toBe(`temporalio/server:${version}`);
    expect(services['temporal-schema']?.image).toBe(`temporalio/admin-tools:${version}`);
    expect(read('scripts/install-temporal-server.sh')).toContain('go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION');
  });

  it('mounts our server config and dynamic config, at the paths the server is told', () => {
    const mounted = Object.fromEntries((temporal.configs ?? []).map((c) => [c.target, compose.configs[c.source]?.file]));
    expect(mounted[env.TEMPORAL_SERVER_CONFIG_FILE_PATH!]).toBe('./config/temporal/server.yaml');
    expect(mounted[env.TEMPORAL_DYNAMIC_CONFIG_FILE!]).toBe('./config/temporal/dynamicconfig.yaml');
    expect(template.split('\n')[0]).toBe('# enable-template');
  });

  it('varies only connection settings between the two: every storage and server setting is literal', () => {
    // Variables: hosts, ports, credentials, bind/broadcast addresses, the dynamic config path, the log level.
    expect(templateVariables.filter((v) => !/_(HOST|PORT|USER|PASSWORD|ADDRESS|FILE|LEVEL)$|^BIND_ON_IP$/.test(v))).toEqual([]);
    for (const key of ['numHistoryShards', 'pluginName', 'databaseName', 'maxConns', 'maxIdleConns', 'maxConnLifetime', 'defaultStore', 'visibilityStore', 'enableGlobalNamespace', 'pollInterval']) {
      const lines = template.split('\n').filter((l) => l.trim().startsWith(`${key}:`));
      expect(lines.length, key).toBeGreaterThan(0);
      expect(lines.filter((l) => l.includes('{{')), key).toEqual([]);
    }
    // compose sets only what the template reads (plus the server's own two switches); the engine sets every port it binds.
    expect(Object.keys(env).filter((k) => !templateVariables.includes(k) && k !== 'TEMPORAL_SERVER_CONFIG_FILE_PATH' && k !== 'TEMPORAL_ALLOW_NO_AUTH')).toEqual([]);
    const portVariables = templateVariables.filter((v) => v.endsWith('_PORT') && v !== 'TEMPORAL_DB_PORT' && v !== 'TEMPORAL_FRONTEND_PORT');
    expect([...SERVICE_PORTS].sort()).toEqual(portVariables);
  });

  it('migrates the schemas with the same temporal-sql-tool steps', () => {
    const job = commandText(services['temporal-schema'] ?? {}).replaceAll('"', '');
    for (const step of SCHEMA_STEPS) {
      const expected = step.join(' ').replace('<schema>', '/etc/temporal/schema').replace('<db>', () => '$$db');
      expect(job).toContain(`--db $$name ${expected}`);
    }
  });
});

describe('compose hardening', () => {
  it('publishes only the webhook on every interface; every other port on 127.0.0.1', () => {
    const published = Object.entries(services).flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, p: String(p) })));
    expect(published.length).toBeGreaterThan(1);
    const open = published.filter(({ p }) => !p.startsWith('127.0.0.1:'));
    expect(open.map((o) => o.name)).toEqual(['webhook']);
  });

  it('mounts only repo files that exist (server config, alert rules, dashboard), besides the operator\u2019s ./secrets/', () => {
    const raw = parse(read('docker-compose.yml')) as { services: Record<string, { volumes?: string[] }> };
    const mounts = Object.values(raw.services).flatMap((s) => (s.volumes ?? []).map(String)).filter((v) => v.startsWith('./')).map((v) => v.split(':')[0]!);
    expect(mounts).toEqual(expect.arrayContaining(['./ops/prometheus/rbm-guard-rules.yml', './ops/grafana/rbm-guard-dashboard.json']));
    // ./secrets/ is the operator's (the compose file's header lists what goes there), never the repo's.
    expect(mounts.filter((m) => !m.startsWith('./secrets/') && !existsSync(new URL(m, root)))).toEqual([]);
    expect(Object.values(compose.configs).map((c) => c.file).filter((f) => f && !existsSync(new URL(f, root)))).toEqual([]);
  });

  it('keeps the codec token off every command line (environment only)', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(commandText(s), name).not.toMatch(/CODEC_TOKEN/);
      expect(String(s.healthcheck?.test ?? ''), name).not.toMatch(/CODEC_TOKEN/);
    }
  });

  it('the README says how to put the UI behind authentication', () => {
    const readme = read('README.md');
    expect(readme).toMatch(/TEMPORAL_AUTH_ENABLED/);
    expect(readme).toMatch(/127\.0\.0\.1/);
  });
});
