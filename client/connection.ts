// One way to reach Temporal for every process: a local address, mTLS, or Temporal Cloud's API key.
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/index.ts';

export type TemporalTarget = Pick<Config, 'TEMPORAL_NAMESPACE' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY'> & {
  address: string;
};

/** TLS settings from config: cert/key are file paths; an API key implies TLS (Temporal Cloud). */
export function tlsOptions(target: Omit<TemporalTarget, 'address' | 'TEMPORAL_NAMESPACE'>) {
  if (target.TEMPORAL_TLS_CERT && target.TEMPORAL_TLS_KEY) {
    return { clientCertPair: { crt: readFileSync(target.TEMPORAL_TLS_CERT), key: readFileSync(target.TEMPORAL_TLS_KEY) } };
  }
  return target.TEMPORAL_API_KEY ? true : undefined;
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({
    address: target.address,
    tls: tlsOptions(target),
    apiKey: target.TEMPORAL_API_KEY,
  });
  return new Client({ connection, namespace: target.TEMPORAL_NAMESPACE });
}
