// The record of a double delivery the guard could not record itself: a DELIVERED/READ that reached
// a guard after it had closed with an SMS sent. A closed run cannot change, so the webhook starts this
// workflow (id lateDeliveryWorkflowId, search attributes RbmOutcome/RbmState=DOUBLE_DELIVERY); it
// completes at once, and its input and result are the record operators read in the UI.
import type { LateDeliveryInput } from './contract.ts';

export async function rbmLateDelivery(input: LateDeliveryInput): Promise<LateDeliveryInput> {
  return input;
}
