// Twilio's Messages API as the SMS sink serves it: create (form To/From/Body), list
// (`GET …/Messages.json?To=…&From=…&DateSent>=YYYY-MM-DD`, newest first, paged) and fetch
// (`GET …/Messages/{Sid}.json`), HTTP Basic with the account SID and auth token, Twilio's JSON shapes
// and RFC 2822 dates. Like real Twilio, create has no idempotency key: every accepted POST is a new
// SMS with a new SID (the kind dedupe is the sink's `twilioIdempotency: 'honour'` switch).
//
// Pessimistic where Twilio's docs are silent: an accepted message stays `queued` with `date_sent`
// null for `sendDelayMs`, and a DateSent filter does not match it until it is sent; DateSent compares
// whole UTC days (a date-time value is cut to its day), so a lookup also sees that day's other SMS.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { E164_PATTERN } from '../../workflows/names.ts';

export const TWILIO_API_VERSION = '2010-04-01';
export const TWILIO_MAX_BODY = 1600;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface TwilioAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One message as Twilio keeps it. */
export interface TwilioMessage {
  sid: string;
  to: string;
  from: string;
  body: string;
  createdAt: number;
  /** When it leaves `queued` and gets its date_sent. */
  sentAt: number;
}

/** What the routes need from the sink: credentials, the message store, and its fault and record hooks. */
export interface TwilioContext {
  accountSid: string;
  authToken: string;
  /** Every accepted create, oldest first. */
  messages: TwilioMessage[];
  /** Runs `perform` under the sink's down mode and faults for this kind of request, and answers. */
  handle(kind: 'send' | 'lookup', res: FastifyReply, perform: () => TwilioAnswer): Promise<void>;
  /** Records an accepted create (unless the idempotency switch replays an earlier answer). */
  accept(to: string, from: string, text: string, key: string | undefined, build: (sid: string) => TwilioAnswer): TwilioAnswer;
}

export function twilioError(status: number, code: number, message: string, headers?: Record<string, string>): TwilioAnswer {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, headers };
}

/** Twilio writes dates as RFC 2822 with a numeric zone: "Tue, 01 Dec 2026 10:46:59 +0000". */
export function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

export const newTwilioSid = () => `SM${randomBytes(16).toString('hex')}`;

const createForm = z.object({ To: z.string().optional(), From: z.string().optional(), Body: z.string().optional() });
const DATE_FILTER = /^(\d{4}-\d{2}-\d{2})(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/;
const listQuery = z.object({
  To: z.string().optional(),
  From: z.string().optional(),
  DateSent: z.string().regex(DATE_FILTER).optional(),
  'DateSent<': z.string().regex(DATE_FILTER).optional(),
  'DateSent>': z.string().regex(DATE_FILTER).optional(),
  PageSize: z.coerce.number().int().min(1).max(1000).default(50),
  Page: z.coerce.number().int().min(0).default(0),
  PageToken: z.string().optional(),
});

export function registerTwilioRoutes(app: FastifyInstance, ctx: TwilioContext): void {
  const base = `/${TWILIO_API_VERSION}/Accounts/:sid`;
  const authorized = (req: FastifyRequest): boolean => {
    const { sid } = req.params as { sid: string };
    const expected = `Basic ${Buffer.from(`${ctx.accountSid}:${ctx.authToken}`).toString('base64')}`;
    return req.headers.authorization === expected && sid === ctx.accountSid;
  };
  const unauthorized = () => twilioError(401, 20003, 'Authenticate');

  app.post(`${base}/Messages.json`, (req, res) =>
    ctx.handle('send', res, () => {
      if (!authorized(req)) return unauthorized();
      const form = createForm.safeParse(req.body);
      const { To, From, Body } = form.success ? form.data : {};
      if (!To) return twilioError(400, 21604, "A 'To' phone number is required.");
      if (!From) return twilioError(400, 21603, "A 'From' phone number is required.");
      if (!Body) return twilioError(400, 21602, 'Message body is required.');
      if (!E164_PATTERN.test(To)) return twilioError(400, 21211, `The 'To' number is not a valid phone number.`);
      if (Body.length > TWILIO_MAX_BODY) return twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
      const header = req.headers['idempotency-key'];
      const key = typeof header === 'string' ? header : undefined;
      return ctx.accept(To, From, Body, key, (sid) => {
        const message = ctx.messages.find((m) => m.sid === sid);
        return { status: 201, body: message ? resource(ctx, message, message.createdAt) : {} };
      });
    }),
  );

  app.get(`${base}/Messages.json`, (req, res) =>
    ctx.handle('lookup', res, () => {
      if (!authorized(req)) return unauthorized();
      const query = listQuery.safeParse(req.query);
      if (!query.success) {
        const issue = query.error.issues[0];
        return twilioError(400, 20001, `Invalid ${String(issue?.path[0] ?? 'query')}: ${issue?.message ?? 'bad value'}`);
      }
      return list(ctx, query.data, req.query as Record<string, string>, Date.now());
    }),
  );

  // find-my-way cannot end a parameter with a literal ".json": take the last segment whole.
  app.get(`${base}/Messages/:file`, (req, res) =>
    ctx.handle('lookup', res, () => {
      if (!authorized(req)) return unauthorized();
      const { file } = req.params as { file: string };
      const sid = file.endsWith('.json') ? file.slice(0, -'.json'.length) : undefined;
      const message = sid ? ctx.messages.find((m) => m.sid === sid) : undefined;
      if (!message) return twilioError(404, 20404, `The requested resource ${req.url.split('?')[0]} was not found`);
      return { status: 200, body: resource(ctx, message, Date.now()) };
    }),
  );
}

/** A message resource in Twilio's shape, as it stands at `now`. */
function resource(ctx: TwilioContext, m: TwilioMessage, now: number): Record<string, unknown> {
  const sent = now >= m.sentAt;
  const uri = `/${TWILIO_API_VERSION}/Accounts/${ctx.accountSid}/Messages/${m.sid}`;
  return {
    account_sid: ctx.accountSid,
    api_version: TWILIO_API_VERSION,
    body: m.body,
    date_created: rfc2822(m.createdAt),
    date_sent: sent ? rfc2822(m.sentAt) : null,
    date_updated: rfc2822(sent ? m.sentAt : m.createdAt),
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: m.from,
    messaging_service_sid: null,
    num_media: '0',
    num_segments: String(Math.ceil(m.body.length / 153) || 1),
    price: null,
    price_unit: 'USD',
    sid: m.sid,
    status: sent ? 'sent' : 'queued',
    subresource_uris: { media: `${uri}/Media.json`, feedback: `${uri}/Feedback.json` },
    to: m.to,
    uri: `${uri}.json`,
  };
}

/** Start of the UTC day of a DateSent value (a date-time is cut to its day). */
function dayOf(value: string): number {
  return Date.parse(`${value.slice(0, 10)}T00:00:00Z`);
}

function list(ctx: TwilioContext, q: z.infer<typeof listQuery>, raw: Record<string, string>, now: number): TwilioAnswer {
  const onOrAfter = q['DateSent>'] === undefined ? undefined : dayOf(q['DateSent>']);
  const onOrBefore = q['DateSent<'] === undefined ? undefined : dayOf(q['DateSent<']) + DAY_MS;
  const onDay = q.DateSent === undefined ? undefined : dayOf(q.DateSent);
  if ([onOrAfter, onOrBefore, onDay].some((v) => v !== undefined && Number.isNaN(v))) return twilioError(400, 20001, 'Invalid DateSent');
  const dateFiltered = onOrAfter !== undefined || onOrBefore !== undefined || onDay !== undefined;
  const matching = ctx.messages
    .filter((m) => (q.To === undefined || m.to === q.To) && (q.From === undefined || m.from === q.From))
    .filter((m) => {
      if (!dateFiltered) return true;
      if (now < m.sentAt) return false; // queued: date_sent is null, and a DateSent filter cannot match null
      if (onOrAfter !== undefined && m.sentAt < onOrAfter) return false;
      if (onOrBefore !== undefined && m.sentAt >= onOrBefore) return false;
      if (onDay !== undefined && (m.sentAt < onDay || m.sentAt >= onDay + DAY_MS)) return false;
      return true;
    })
    .reverse(); // newest first
  const start = q.Page * q.PageSize;
  const page = matching.slice(start, start + q.PageSize);
  const path = `/${TWILIO_API_VERSION}/Accounts/${ctx.accountSid}/Messages.json`;
  const filters = Object.entries(raw).filter(([k]) => !['Page', 'PageSize', 'PageToken'].includes(k));
  const pageUri = (index: number, token?: string) => {
    const params = new URLSearchParams([...filters, ['PageSize', String(q.PageSize)], ['Page', String(index)]]);
    if (token) params.set('PageToken', token);
    return `${path}?${params.toString()}`;
  };
  const last = page[page.length - 1];
  const hasNext = start + q.PageSize < matching.length && last !== undefined;
  return {
    status: 200,
    body: {
      end: start + Math.max(0, page.length - 1),
      first_page_uri: pageUri(0),
      messages: page.map((m) => resource(ctx, m, now)),
      next_page_uri: hasNext ? pageUri(q.Page + 1, `PA${last.sid}`) : null,
      page: q.Page,
      page_size: q.PageSize,
      previous_page_uri: q.Page > 0 ? pageUri(q.Page - 1, `PB${page[0]?.sid ?? ''}`) : null,
      start,
      uri: pageUri(q.Page, q.PageToken),
    },
  };
}
