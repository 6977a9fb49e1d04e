// "The same message" for a retried POST /v1/guards (service/api/same-message.ts), without a server.
import { expect, it } from 'vitest';
import { isSameMessage } from '../service/api/same-message.ts';
import { parseTrackInput } from '../client/track-input.ts';

const body = { agentId: 'agent', messageId: 'm1', phone: '+14155550100', staleAt: '2030-01-01T00:10:00Z', sentAt: '2030-01-01T00:00:00Z', trafficType: 'AUTHENTICATION', fallbackText: 'code 1' };
const held = parseTrackInput(body, new Date('2030-01-01T00:00:00Z'));

it('the same body is the same message; another priority, phone or text is not', () => {
  expect(isSameMessage(body, held)).toBe(true);
  expect(isSameMessage({ ...body, priority: 1 }, held)).toBe(true); // an OTP's own default
  expect(isSameMessage({ ...body, priority: 3 }, held)).toBe(false);
  expect(isSameMessage({ ...body, phone: '+14155550101' }, held)).toBe(false);
  expect(isSameMessage({ ...body, fallbackText: 'code 2' }, held)).toBe(false);
});

it('a guard tracked before messages carried a priority is matched on the rest', () => {
  const before = { ...held };
  delete before.priority;
  expect(isSameMessage(body, before)).toBe(true);
  expect(isSameMessage({ ...body, fallbackText: 'code 2' }, before)).toBe(false);
});
