// The demo's realistic mixed batch, reproducible from a seed: OTPs with short deadlines, promotions
// with longer ones; most delivered in time, some late, some never, some racing the revoke, some
// meeting a flaky RBM API on the way.
import { seededRandom } from '../random.ts';
import type { MessageTrafficType } from '../../workflows/contract.ts';
import type { DeliveryPlan, RbmFault } from '../sim/rbm-simulator.ts';

export interface DemoMessage {
  kind: string;
  agentId: string;
  messageId: string;
  phone: string;
  trafficType: MessageTrafficType;
  staleInMs: number;
  fallbackText: string | undefined;
  plan: Partial<DeliveryPlan>;
  revokeFaults: RbmFault[];
}


export function demoBatch(n: number, seed: number): DemoMessage[] {
  const random = seededRandom(seed);
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const out: DemoMessage[] = [];
  for (let i = 0; i < n; i++) {
    const otp = random() < 0.6;
    const staleInMs = otp ? between(4000, 8000) : between(10_000, 15_000);
    const roll = random();
    let kind: string;
    let plan: Partial<DeliveryPlan>;
    let revokeFaults: RbmFault[] = [];
    if (roll < 0.62) {
      kind = 'delivered in time';
      plan = { deliverAfterMs: between(300, staleInMs - 1500), readAfterMs: random() < 0.5 ? 800 : undefined };
    } else if (roll < 0.74) {
      kind = 'late (phone offline past the deadline)';
      plan = { deliverAfterMs: staleInMs + 20_000 };
    } else if (roll < 0.84) {
      kind = 'never delivered';
      plan = { deliverAfterMs: null };
    } else if (roll < 0.89) {
      kind = 'delivered just as the revoke lands (404)';
      plan = { deliverAfterMs: null, raceRevoke: 404 };
    } else if (roll < 0.92) {
      kind = 'revoked, but the phone got it anyway';
      plan = { deliverAfterMs: null, raceRevoke: 200, eventDelayMs: 1000 };
    } else {
      kind = 'flaky RBM API (429/503 before the revoke lands)';
      plan = { deliverAfterMs: null };
      revokeFaults = random() < 0.5 ? [{ status: 503 }] : [{ status: 429, retryAfterSeconds: 1 }, { status: 500 }];
    }
    const phone = `+1555${String(1_000_000 + i).padStart(7, '0')}`;
    out.push({
      kind,
      agentId: otp ? 'bank-otp' : 'shop-promos',
      messageId: `demo-${seed}-${i}`,
      phone,
      trafficType: otp ? 'AUTHENTICATION' : 'PROMOTION',
      staleInMs,
      // Some promotions have nothing to fall back to: revoked and done.
      fallbackText: otp ? `Your code is ${between(100000, 999999)}` : random() < 0.7 ? 'Weekend sale: 20% off until Sunday' : undefined,
      plan,
      revokeFaults,
    });
  }
  return out;
}
