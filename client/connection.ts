// One way to reach Temporal for every process: a local address, mTLS, or Temporal Cloud's API key.
// Every Client carries the payload codec (client/codec.ts): without one it would write phone
// numbers and message text into Temporal in clear.
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import type { Config } from '../config/index.ts';
import { codecFromConfig, dataConverter, type EncryptionConfig } from './codec.ts';

export type TemporalTarget = Pick<Config, 'TEMPORAL_NAMESPACE' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'> &
  EncryptionConfig & {
    address: string;
  };

/** TLS settings from config: cert/key are file paths; an API key implies TLS (Temporal Cloud). */
export function tlsOptions(target: Pick<Config, 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'>) {
  if (target.TEMPORAL_TLS_CERT && target.TEMPORAL_TLS_KEY) {
    return { clientCertPair: { crt: readFileSync(target.TEMPORAL_TLS_CERT), key: readFileSync(target.TEMPORAL_TLS_KEY) } };
  }
  return target.TEMPORAL_API_KEY ? true : undefined;
}

export interface ConnectOptions {
  /** The codec to use; default the one config describes (null: encryption off). */
  codec?: PayloadCodec | null;
}

/** A connected Client with the payload codec. The codec is resolved first: a key problem fails fast. */
export async function connectClient(target: TemporalTarget, options: ConnectOptions = {}): Promise<Client> {
  const codec = options.codec !== undefined ? options.codec : codecFromConfig(target);
  const connection = await Connection.connect({
    address: target.address,
    tls: tlsOptions(target),
    apiKey: target.TEMPORAL_API_KEY,
  });
  return new Client({ connection, namespace: target.TEMPORAL_NAMESPACE, dataConverter: dataConverter(codec) });
}
