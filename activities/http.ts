// HTTP helpers every outbound client shares (RBM, the SMS providers): secret redaction, Retry-After,
// and what a failed fetch() tells us — its error code, and whether the request can have been written.

/** Removes the given secrets, anything shaped like a phone number, and bearer/access tokens. */
export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join('[redacted]');
  }
  return out
    .replace(/ya29\.[\w.-]+/g, '[token]')
    .replace(/Bearer\s+[\w.~+/=-]+/gi, 'Bearer [token]')
    .replace(/(%2B|\+)?\d[\d ().-]{6,}\d/gi, '[number]');
}

/** Retry-After as seconds (delta-seconds or an HTTP date). */
export function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** A network failure's code (ECONNREFUSED, UND_ERR_SOCKET, …), never its text (it may hold a URL). */
export function networkCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (typeof current === 'object' && current !== null) {
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string') return code;
      current = (current as { cause?: unknown }).cause;
    }
  }
  return error instanceof Error ? error.name : 'unknown';
}

/**
 * Codes raised before a connection exists (refused, no route, no such host, connect timeout): the
 * request surely never reached the server. Every other failure — a reset, a closed socket, a timeout
 * while waiting for the answer — may come after the server read the request.
 */
const NEVER_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** False only when a failed request surely never reached the server. */
export function mayHaveReachedServer(error: unknown): boolean {
  return !NEVER_CONNECTED.has(networkCode(error));
}
