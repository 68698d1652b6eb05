// W3C trace context: the EMS's `traceparent` (MQTT v5 user property, or the command body over
// MQTT 3.1.1) becomes the parent of the gateway's DR spans, so one trace shows the EMS's send and
// every controller write. The propagator is used directly (not the global one): no singletons.
import { ROOT_CONTEXT, defaultTextMapGetter, trace, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const propagator = new W3CTraceContextPropagator();

/** The context carrying the remote span of `traceparent`; undefined when absent or invalid. */
export function contextFromTraceparent(traceparent: string | undefined, tracestate?: string): Context | undefined {
  if (traceparent === undefined) return undefined;
  const carrier: Record<string, string> = { traceparent };
  if (tracestate !== undefined) carrier['tracestate'] = tracestate;
  const ctx = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  return trace.getSpanContext(ctx) === undefined ? undefined : ctx;
}

/** A user property may arrive as a string or (repeated) as a list: the first one wins. */
export function userProperty(props: Record<string, string | string[]> | undefined, name: string): string | undefined {
  const v = props?.[name];
  return Array.isArray(v) ? v[0] : v;
}
