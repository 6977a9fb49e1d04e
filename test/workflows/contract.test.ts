// The generated contract (contract/guard-contract.json and the copies the Python and Go clients
// embed) must be what the TypeScript definition generates now, and say what the code does.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildContract, CONTRACT_FILES, contractText } from '../../scripts/generate-contract.ts';
import { GUARD_RULES, guardWorkflowId, MESSAGE_TRAFFIC_TYPES, normalizeAgentId, OUTCOMES, parseGuardWorkflowId, PRIORITY } from '../../workflows/contract.ts';
import { defaultPolicy, parseDuration, parseTrackInput } from '../../client/track-input.ts';
import { fillTemplate, MIN_DEFER_MS, startDelayMs } from '../../client/deferred-start.ts';
import { initialGuard, statusOf } from '../../workflows/lifecycle.ts';

describe('generated contract', () => {
  it.each(CONTRACT_FILES)('%s is current (else run `npm run contract`)', (file) => {
    expect(readFileSync(file, 'utf8')).toBe(contractText());
  });

  it('makes every starter name the rules: GuardInput.rules is required and is today\u2019s', () => {
    const c = buildContract() as { guardRules: number; schemas: { GuardInput: { required: string[]; properties: { rules: { const: number } } } } };
    expect(c.schemas.GuardInput.required).toContain('rules');
    expect(c.schemas.GuardInput.properties.rules.const).toBe(c.guardRules);
    expect(c.guardRules).toBe(GUARD_RULES);
  });

  it('carries every outcome, including the newest ones', () => {
    const c = buildContract() as { states: { outcomes: string[] } };
    expect(c.states.outcomes).toEqual([...OUTCOMES]);
    expect(c.states.outcomes).toContain('FALLBACK_MAYBE_TWICE');
  });

  it('its guard-id grammar and agent-id rule agree with the code', () => {
    const c = buildContract() as { workflowId: { pattern: string }; agentId: { normalise: { stripSuffixCaseInsensitive: string } } };
    const suffix = c.agentId.normalise.stripSuffixCaseInsensitive;
    for (const [agent, message] of [['acme', 'a/b:c'], [`Acme${suffix.toUpperCase()}`, 'x'], [' acme ', 'm-1']] as const) {
      const id = guardWorkflowId(agent, message);
      const m = new RegExp(c.workflowId.pattern, 's').exec(id);
      expect(m?.[1]).toBe(normalizeAgentId(agent));
      expect(m?.[2]).toBe(message);
      expect(parseGuardWorkflowId(id)).toEqual({ agentId: normalizeAgentId(agent), messageId: message });
    }
  });

  it('its duration grammar and policy defaults agree with the code', () => {
    const c = buildContract() as { duration: { pattern: string; unitMs: Record<string, number> }; policyDefaults: Record<string, unknown> };
    const m = new RegExp(c.duration.pattern).exec('90s')!;
    expect(Number(m[1]) * c.duration.unitMs[m[2]!]!).toBe(parseDuration('90s'));
    expect(c.policyDefaults.PROMOTION).toEqual(defaultPolicy('PROMOTION'));
    expect((c.policyDefaults.PROMOTION as { onUnknown: string }).onUnknown).toBe('no-fallback');
    expect((c.policyDefaults.AUTHENTICATION as { onUnknown: string }).onUnknown).toBe('fallback');
  });

  it('its task priorities are what a track resolves to (the Python and Go clients read them from here)', () => {
    const c = buildContract() as { priority: unknown; trafficPriority: Record<string, number> };
    expect(c.priority).toEqual(PRIORITY);
    for (const trafficType of MESSAGE_TRAFFIC_TYPES) {
      const m = parseTrackInput({ agentId: 'acme', messageId: 'm-1', phone: '+14155550100', staleIn: '10m', trafficType });
      expect(m.priority).toBe(c.trafficPriority[trafficType]);
    }
  });
});

describe('deferred starts in the contract (client/deferred-start.ts)', () => {
  it('the status template, filled from a start, is what statusBeforeFirstRun answers for it', () => {
    const c = buildContract() as { deferredStart: { minDelayMs: number; statusBeforeFirstRun: { template: unknown } } };
    const message = parseTrackInput({ agentId: 'Acme@rbm.goog', messageId: 'm/é 1'.replace(' ', '-'), phone: '+14155550100', staleIn: '10m', trafficType: 'AUTHENTICATION' });
    const workflowId = guardWorkflowId(message.agentId, message.messageId);
    const startedAt = '2026-12-04T10:11:12.013Z';
    const input = { agentId: message.agentId, messageId: message.messageId, rules: GUARD_RULES, message, deferred: true } as const;
    const filled = fillTemplate(c.deferredStart.statusBeforeFirstRun.template, { workflowId, agentId: input.agentId, messageId: input.messageId, staleAt: message.staleAt, startedAt });
    expect(filled).toEqual(statusOf(initialGuard(workflowId, input, startedAt, GUARD_RULES)));
    expect(c.deferredStart.minDelayMs).toBe(MIN_DEFER_MS);
  });

  it('defers only a guard that waits, and only when the wait is worth a start delay', () => {
    const now = Date.parse('2026-12-04T10:00:00.000Z');
    expect(startDelayMs({ staleAt: '2026-12-04T10:10:00.000Z' }, now)).toBe(600_000);
    expect(startDelayMs({ staleAt: '2026-12-04T10:10:00.000Z', send: { text: 'hi' } }, now)).toBe(0);
    expect(startDelayMs({ staleAt: new Date(now + MIN_DEFER_MS - 1).toISOString() }, now)).toBe(0);
  });
});
