/**
 * The OpenTelemetry SDK, switched on by the standard environment variables and off otherwise:
 * tracing starts when `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint is set
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless
 * `OTEL_SDK_DISABLED=true`. Spans go to the OTLP/HTTP exporter, which reads the rest of the
 * `OTEL_EXPORTER_OTLP_*` settings (headers, timeout) itself.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { context, propagation, ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Logger } from './logging.js';

/** Tracing settings read from the environment. */
export interface TracingSettings {
  /** Full URL of the OTLP/HTTP traces endpoint. */
  url: string;
  serviceName: string;
}

/** The settings when the environment asks for tracing, else undefined. */
export function tracingFromEnv(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!traces && !base && env.OTEL_TRACES_EXPORTER !== 'otlp') return undefined;
  if (env.OTEL_TRACES_EXPORTER && env.OTEL_TRACES_EXPORTER !== 'otlp') return undefined;
  const url = traces ?? `${(base ?? 'http://localhost:4318').replace(/\/$/, '')}/v1/traces`;
  return { url, serviceName: env.OTEL_SERVICE_NAME ?? 'kubevigil' };
}

/** Active context through async calls, so spans nest across awaits (the SDK needs one per process). */
class AsyncLocalContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (thisArg: unknown, args: unknown[]) => this.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(thisArg, args));
    return function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    } as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

/** Registers the SDK globally; returns the function that flushes and stops it. */
export function startTracing(s: TracingSettings, logger: Logger): () => Promise<void> {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': s.serviceName }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: s.url }) })],
  });
  context.setGlobalContextManager(new AsyncLocalContextManager());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  logger.info({ url: s.url }, 'tracing to OTLP');
  return async () => {
    await provider.forceFlush().catch((err: unknown) => logger.warn({ err }, 'flushing spans failed'));
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  };
}
