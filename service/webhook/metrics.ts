// The webhook's Prometheus metrics, served at /metrics. Every label has a bounded set of values
// (event types, outcomes, reasons, status codes): never a guard id, message id or phone.
import { Counter, Histogram, type Registry } from 'prom-client';

export type WebhookMetrics = ReturnType<typeof createMetrics>;

export function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: new Counter({
      name: 'rbm_webhook_events_total',
      help: 'RBM events received with a valid signature, by type and result (signalled, ignored, unroutable, late, recorded, failed)',
      labelNames: ['event_type', 'result'] as const,
      registers,
    }),
    signaturesRejected: new Counter({
      name: 'rbm_webhook_signatures_rejected_total',
      help: 'Pushes refused for a missing or wrong X-Goog-Signature',
      labelNames: ['reason'] as const,
      registers,
    }),
    signalsFailed: new Counter({
      name: 'rbm_webhook_signals_failed_total',
      help: 'Signals Temporal did not accept (answered 503/500 so RBM retries), by gRPC status',
      labelNames: ['reason'] as const,
      registers,
    }),
    lateEvents: new Counter({
      name: 'rbm_webhook_late_events_total',
      help: 'Events for a guard that had already closed: acknowledged, no new run',
      labelNames: ['event_type'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'rbm_webhook_requests_rejected_total',
      help: 'Requests answered 4xx, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    handshakes: new Counter({
      name: 'rbm_webhook_handshakes_total',
      help: 'URL-verification handshakes, by result',
      labelNames: ['result'] as const,
      registers,
    }),
    unroutable: new Counter({
      name: 'rbm_webhook_unroutable_total',
      help: 'Signed events no guard can take (unknown eventType, missing or bad ids): answered 200 so Pub/Sub stops, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    webhookTypes: new Counter({
      name: 'rbm_webhook_requests_by_type_total',
      help: 'POSTs to the events endpoint by X-Goog-Webhook-Type (other = an unknown value, none = no header)',
      labelNames: ['webhook_type'] as const,
      registers,
    }),
    lateByOutcome: new Counter({
      name: 'rbm_webhook_late_events_by_outcome_total',
      help: 'DELIVERED, READ and TTL_EXPIRATION_REVOKED events after their guard closed, by the outcome it closed with (unknown = none recorded)',
      labelNames: ['event_type', 'outcome'] as const,
      registers,
    }),
    doubleDeliveries: new Counter({
      name: 'rbm_webhook_double_deliveries_total',
      help: 'DELIVERED/READ after a closed guard had sent an SMS, recorded as a rbmLateDelivery workflow (duplicate = already recorded)',
      labelNames: ['event_type', 'outcome', 'result'] as const,
      registers,
    }),
    ackSeconds: new Histogram({
      name: 'rbm_webhook_ack_seconds',
      help: 'Time from request to answer on POST /rbm/events, by status',
      labelNames: ['status'] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    signalSeconds: new Histogram({
      name: 'rbm_webhook_signal_seconds',
      help: 'Time Temporal took to accept (or refuse) a signal-with-start',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
