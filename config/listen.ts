// Listening on a host and port, one way for every server (webhook, API, codec, metrics): a taken port
// is one line naming its variable, and the URL printed is one a client on this machine can call.
import type { FastifyInstance } from 'fastify';

/** `host:port`, with an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Listens, or closes the app and throws `fail(message)` for a taken port (other errors as they are).
 * Returns the bound port (WEBHOOK_PORT=0 and friends) and the local URL.
 */
export async function listenOn(
  app: FastifyInstance,
  at: { host: string; port: number; variable: string },
  fail: (message: string, cause: unknown) => Error = (message, cause) => new Error(message, { cause }),
): Promise<{ port: number; url: string }> {
  try {
    await app.listen({ host: at.host, port: at.port });
  } catch (err) {
    await app.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw fail(`${at.variable} ${at.port} on ${at.host} is already in use: stop the other process or choose another port`, err);
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : at.port;
  const local = at.host === '0.0.0.0' || at.host === '::' ? '127.0.0.1' : at.host;
  return { port, url: `http://${hostPort(local, port)}` };
}
