/** The bus's OpenTelemetry spans: one producer span per publish, one consumer span per handled batch. */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Link, type Span, type SpanContext } from '@opentelemetry/api';

const TRACER = 'kubevigil.bus';

/** Starts the span of publishing `count` messages to `topic` and writes its context into `headers` (W3C trace context). */
export function startPublishSpan(topic: string, count: number, headers: Record<string, string>): Span {
  const span = trace.getTracer(TRACER).startSpan(`${topic} publish`, {
    kind: SpanKind.PRODUCER,
    attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'messaging.batch.message_count': count },
  });
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return span;
}

/** Marks a span failed by `e`. */
export function recordFailure(span: Span, e: unknown): void {
  span.recordException(e as Error);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Where a handled batch came from, for its consumer span. */
export interface ConsumedBatch {
  topic: string;
  groupId: string;
  partition: number;
  count: number;
  /** The trace context each message carried. */
  contexts: Context[];
}

/** Runs `handle` in a consumer span: a child of the producer's when the batch is one trace, else linked to each. */
export function inConsumerSpan(batch: ConsumedBatch, handle: () => Promise<void>): Promise<void> {
  const { contexts } = batch;
  const spanContexts = contexts.map((c) => trace.getSpanContext(c)).filter((s): s is SpanContext => s !== undefined && trace.isSpanContextValid(s));
  const links: Link[] = spanContexts.map((s) => ({ context: s }));
  const oneTrace = spanContexts.length > 0 && spanContexts.every((s) => s.traceId === spanContexts[0]!.traceId);
  const parent = oneTrace ? contexts.find((c) => trace.getSpanContext(c) !== undefined)! : ROOT_CONTEXT;
  return trace.getTracer(TRACER).startActiveSpan(
    `${batch.topic} process`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.destination.name': batch.topic,
        'messaging.consumer.group.name': batch.groupId,
        'messaging.destination.partition.id': String(batch.partition),
        'messaging.batch.message_count': batch.count,
      },
    },
    parent,
    async (span) => {
      try {
        await handle();
      } catch (e) {
        recordFailure(span, e);
        throw e;
      } finally {
        span.end();
      }
    },
  );
}
