// One way to reach Temporal for every process: a local address, mTLS, or Temporal Cloud's API key.
// Every Client carries the payload codec (client/codec.ts): without one it would write phone
// numbers and message text into Temporal in clear, so callers say which codec, or null for none.
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { Config } from '../config/index.ts';
import { codecFromConfig, dataConverter, type EncryptionConfig } from './codec.ts';

/** Where and how to connect: the library's own names, not environment variables. */
export interface ClientOptions {
  /** Temporal frontend, `host:port`. */
  address: string;
  /** Default `default`. */
  namespace?: string;
  /** Temporal Cloud API key; implies TLS. */
  apiKey?: string;
  /** mTLS client certificate and key, as file paths (both or neither). */
  tlsCert?: string;
  tlsKey?: string;
  /** How long to wait for the server before failing (default 10 s). */
  connectTimeoutMs?: number;
  /** The payload codec; `null` writes payloads in clear (tests, or encryption deliberately off). */
  codec: PayloadCodec | null;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** A certificate or key file that cannot be read: a configuration problem, not an unreachable server. */
export class TlsFileError extends Error {
  readonly option: 'tlsCert' | 'tlsKey';
  readonly file: string;
  constructor(option: 'tlsCert' | 'tlsKey', file: string, cause: unknown) {
    super(`cannot read ${option === 'tlsCert' ? 'the TLS certificate' : 'the TLS key'} ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'TlsFileError';
    this.option = option;
    this.file = file;
  }
}

/** TLS settings for a Connection or NativeConnection: an mTLS pair, TLS alone for an API key, or none. */
export function tlsFor(options: Pick<ClientOptions, 'apiKey' | 'tlsCert' | 'tlsKey'>) {
  if (options.tlsCert && options.tlsKey) {
    return { clientCertPair: { crt: readTlsFile('tlsCert', options.tlsCert), key: readTlsFile('tlsKey', options.tlsKey) } };
  }
  return options.apiKey ? true : undefined;
}

function readTlsFile(option: 'tlsCert' | 'tlsKey', file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsFileError(option, file, err);
  }
}

/** A connected Client with the payload codec (from the configuration: `connectClient(clientOptions(config, { address }))`). */
export async function connectClient(options: ClientOptions): Promise<Client> {
  const connection = await Connection.connect({
    address: options.address,
    tls: tlsFor(options),
    apiKey: options.apiKey,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  });
  return new Client({ connection, namespace: options.namespace ?? 'default', dataConverter: dataConverter(options.codec) });
}

// ---- the adapter from the process configuration ----

export type TemporalTarget = Pick<Config, 'TEMPORAL_NAMESPACE' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'> &
  EncryptionConfig & {
    address: string;
  };

/**
 * ClientOptions from the configuration module's variables. The codec, unless given, is the one the
 * encryption variables describe, resolved here so that a key problem fails before connecting.
 */
export function clientOptions(
  config: Omit<TemporalTarget, 'address'>,
  overrides: { address: string; codec?: PayloadCodec | null; connectTimeoutMs?: number },
): ClientOptions {
  return {
    address: overrides.address,
    namespace: config.TEMPORAL_NAMESPACE,
    apiKey: config.TEMPORAL_API_KEY,
    tlsCert: config.TEMPORAL_TLS_CERT,
    tlsKey: config.TEMPORAL_TLS_KEY,
    connectTimeoutMs: overrides.connectTimeoutMs,
    codec: overrides.codec !== undefined ? overrides.codec : codecFromConfig(config),
  };
}

/** TLS settings from the configuration's variables (NativeConnection for the worker, the setup command). */
export function tlsOptions(config: Pick<Config, 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'>) {
  return tlsFor({ apiKey: config.TEMPORAL_API_KEY, tlsCert: config.TEMPORAL_TLS_CERT, tlsKey: config.TEMPORAL_TLS_KEY });
}
