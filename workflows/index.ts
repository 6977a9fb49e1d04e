// The workflow bundle's entry point: every workflow type the worker registers.
export { rbmGuard } from './guard.ts';
export { rbmLateDelivery } from './late-delivery.ts';
