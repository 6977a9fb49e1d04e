// The Temporal Web UI as a person sees it: headless Chromium filters the guard list by our search
// attribute, opens one guard and finds its summary and state. Saves a screenshot. Payloads are
// encrypted: the UI shows them only through our codec server, reached with the endpoint (and its
// token) `npm start` hands the dev server.
import { mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import { freePort, startDevServer, type DevServer } from '../service/engine/dev-server.ts';
import { startCodecServer, type CodecServer } from '../service/codec.ts';
import { embeddedUiOrigins } from '../config/index.ts';
import { testCodec } from './support/encryption.ts';
import { startGuardStack, testMessage, type GuardStack } from './support/stack.ts';

let server: DevServer;
let stack: GuardStack;
let browser: Browser;
let codecServer: CodecServer;
/** Payloads the UI had the codec server decrypt. */
let decoded = 0;
const outputDir = new URL('../test-output/', import.meta.url);

beforeAll(async () => {
  const uiPort = await freePort();
  const countingCodec = {
    encode: (p: Payload[]) => testCodec.encode(p),
    decode: async (p: Payload[]) => {
      decoded += p.filter((x) => Buffer.from(x.metadata?.encoding ?? new Uint8Array()).toString() === 'binary/encrypted').length;
      return testCodec.decode(p);
    },
  };
  codecServer = await startCodecServer({ codec: countingCodec, token: 'ui-test-token-0123456789', origins: embeddedUiOrigins(uiPort), host: '127.0.0.1', port: 0 });
  server = await startDevServer({ uiPort, codecEndpoint: codecServer.uiEndpoint });
  stack = await startGuardStack({ address: server.address });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await server?.stop();
  await codecServer?.close();
});

it('the UI lists guards by outcome and shows a guard’s summary and state', async () => {
  const m = testMessage('ui');
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
  const { workflowId } = await stack.guards.track({ ...m, staleIn: '1s', trafficType: 'AUTHENTICATION', fallbackText: 'Your code is 123456', policy: { ...m.policy, lingerMs: 0 } });
  expect((await stack.result(workflowId)).outcome).toBe('FALLBACK_SENT');

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const query = encodeURIComponent('RbmOutcome="FALLBACK_SENT"');
  await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${query}`);
  const row = page.getByText(workflowId).first();
  await row.waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: new URL('ui-list-failed.png', outputDir).pathname, fullPage: true });
    throw e;
  });

  await page.goto(`${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
  try {
    // The result panel carries the guard's final state and timeline (the status the query returns).
    await page.getByText('"outcome": "FALLBACK_SENT"').first().waitFor({ timeout: 30_000 });
    // Summary and current details live under User Metadata, rendered as markdown in frames.
    await page.getByText('User Metadata').first().click();
    await page.getByText('Current Details').first().waitFor({ timeout: 15_000 });
    const frameText = async () => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).join('\n');
    let text = '';
    for (let i = 0; i < 50 && !text.includes('revoke rounds'); i++) {
      await page.waitForTimeout(200);
      text = await frameText();
    }
    expect(text).toContain(`RBM authentication from ${m.agentId}`);
    expect(text).toContain('fallback: sms');
    expect(text).toContain('FALLBACK_SENT (outcome)');
    expect(text).toContain('revoke rounds: 1');
    // All of it came through the codec server: the history holds only ciphertext.
    expect(decoded).toBeGreaterThan(0);
  } finally {
    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: new URL('ui-guard.png', outputDir).pathname, fullPage: true });
  }
  await page.close();
}, 120_000);
