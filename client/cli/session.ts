// The CLI's one connection to Temporal, made only once the input is known to be good, with the
// service's own configuration and payload keys.
import { existsSync } from 'node:fs';
import { ServiceError, type Client } from '@temporalio/client';
import { loadConfig, type Config } from '../../config/index.ts';
import { agentDirectory } from '../../config/agents.ts';
import { codecFromConfig, devKeyFile } from '../codec.ts';
import { clientOptions, connectClient, TlsFileError } from '../connection.ts';
import { GuardClient } from '../guard-client.ts';
import { errorText } from '../temporal-errors.ts';
import { CliError, EXIT, oneLine, usage } from './errors.ts';
import type { CliIo } from './program.ts';

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export class Session {
  config: Config | undefined;
  address = '';
  client: Client | undefined;
  private readonly io: CliIo;

  constructor(io: CliIo) {
    this.io = io;
  }

  loadConfig(): Config {
    this.config ??= loadConfig(this.io.env ?? process.env);
    // Without TEMPORAL_ADDRESS the service runs an embedded dev server on TEMPORAL_DEV_PORT: talk to that.
    this.address = this.config.TEMPORAL_ADDRESS ?? `127.0.0.1:${this.config.TEMPORAL_DEV_PORT}`;
    return this.config;
  }

  get namespace(): string {
    return this.config?.TEMPORAL_NAMESPACE ?? 'default';
  }

  async guards(): Promise<GuardClient> {
    const config = this.loadConfig();
    // The service's key ring, resolved before connecting (a key problem is a config error). The CLI
    // never generates the embedded server's dev key: a key of its own would write payloads no
    // worker can read.
    if (
      !config.TEMPORAL_ADDRESS &&
      config.RBM_GUARD_ENCRYPTION === 'on' &&
      !config.RBM_GUARD_ENCRYPTION_KEYS &&
      !config.RBM_GUARD_ENCRYPTION_KEY_FILE &&
      !existsSync(devKeyFile(config.RBM_GUARD_DATA_DIR))
    ) {
      throw usage(
        `no encryption key: ${devKeyFile(config.RBM_GUARD_DATA_DIR)} (the embedded server's) does not exist — run this where \`npm start\` runs, or set RBM_GUARD_DATA_DIR or RBM_GUARD_ENCRYPTION_KEYS`,
      );
    }
    const codec = codecFromConfig(config);
    const timeoutMs = this.io.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    try {
      this.client = await connectClient(clientOptions(config, { address: this.address, codec, connectTimeoutMs: timeoutMs }));
    } catch (err) {
      if (err instanceof TlsFileError) {
        throw usage(`${err.option === 'tlsCert' ? 'TEMPORAL_TLS_CERT' : 'TEMPORAL_TLS_KEY'}: cannot read ${err.file}: ${errorText(err.cause)}`);
      }
      const cause = err instanceof ServiceError && err.cause ? err.cause : err;
      throw this.unreachable(/before the deadline/i.test(errorText(cause)) ? `no answer within ${timeoutMs / 1000}s` : errorText(cause));
    }
    return new GuardClient(this.client, config.TEMPORAL_TASK_QUEUE, { agents: agentDirectory(config).agents, deferStart: config.RBM_GUARD_DEFER_START === 'on' });
  }

  unreachable(reason: string): CliError {
    const hint = this.config?.TEMPORAL_ADDRESS ? 'is the server up?' : 'TEMPORAL_ADDRESS is unset; is `npm start` running?';
    return new CliError(`cannot reach Temporal at ${this.address}: ${oneLine(reason)} — ${hint}`, EXIT.unreachable);
  }

  async close(): Promise<void> {
    await this.client?.connection.close().catch(() => undefined);
  }
}
