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

/**
 * Ports fetch() refuses to connect to at all (the Fetch standard's "bad port" list): a URL on one
 * fails before any connection, every time. Config refuses them at start (config/index.ts).
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123,
  135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Why fetch() could never send to this URL (scheme, blocked port), or undefined. */
export function unfetchableUrl(text: string): string | undefined {
  const url = URL.parse(text);
  if (!url) return 'not a URL';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be http:// or https://';
  if (url.port && FETCH_BLOCKED_PORTS.has(Number(url.port))) return `port ${url.port} is one fetch() refuses to connect to (the Fetch standard's bad ports): choose another`;
  return undefined;
}

/** fetch()'s own word for a request it refused before connecting (it carries no error code). */
const REFUSED_BEFORE_CONNECTING = new Map([['bad port', 'BAD_PORT']]);

/** A network failure's code (ECONNREFUSED, UND_ERR_SOCKET, …), never its text (it may hold a URL). */
export function networkCode(error: unknown): string {
  // fetch() refusing the request itself (a header it cannot send, a bad URL) throws a bare TypeError;
  // a failure on the wire is a TypeError("fetch failed") with the cause.
  if (error instanceof TypeError && error.cause === undefined) return 'REQUEST_INVALID';
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (typeof current === 'object' && current !== null) {
      const code = (current as { code?: unknown }).code;
      if (typeof code === 'string') return code;
      const refused = current instanceof Error ? REFUSED_BEFORE_CONNECTING.get(current.message) : undefined;
      if (refused) return refused;
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
  'BAD_PORT',
  'REQUEST_INVALID',
]);

/** False only when a failed request surely never reached the server. */
export function mayHaveReachedServer(error: unknown): boolean {
  return !NEVER_CONNECTED.has(networkCode(error));
}
