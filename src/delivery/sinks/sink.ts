// What a sink is to the forwarder: something that takes a batch of spooled records or throws a
// SinkError saying whether to retry the same batch later or to split it (a poison record inside).
import type { Sequenced } from '../records.js';

/**
 * retry: the upstream is down, slow, refusing us (auth) or overloaded: same batch later, with backoff.
 * poison: the upstream refused the content (HTTP 400/422, a constraint): split until the one bad record is found.
 * too_large: the batch is too big for the upstream (HTTP 413): split, nothing is dropped for it alone.
 */
type SinkErrorKind = 'retry' | 'poison' | 'too_large';

export class SinkError extends Error {
  constructor(message: string, readonly kind: SinkErrorKind, readonly errorType: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkError';
  }
}

type SinkType = 'otlp_logs' | 'influx' | 'postgres';

export interface DeliverySink {
  readonly type: SinkType;
  /** Where it delivers, for logs and /status (no credentials). */
  readonly target: string;
  /** Called before the first send and after a failure until it succeeds (e.g. CREATE TABLE). */
  prepare(): Promise<void>;
  send(records: readonly Sequenced[]): Promise<void>;
  close(): Promise<void>;
}

/** error_type of a failed HTTP exchange, and whether to retry or split. */
export function httpFailure(status: number, body: string, what: string): SinkError {
  const text = `${what}: HTTP ${status}${body ? ` ${body.slice(0, 300)}` : ''}`;
  if (status === 413) return new SinkError(text, 'too_large', 'too_large');
  if (status === 401 || status === 403) return new SinkError(text, 'retry', 'unauthorized');
  if (status === 408 || status === 429) return new SinkError(text, 'retry', `http_${status}`);
  if (status === 400 || status === 422) return new SinkError(text, 'poison', 'rejected');
  if (status >= 500) return new SinkError(text, 'retry', 'http_5xx');
  if (status === 404) return new SinkError(text, 'retry', 'not_found');
  return new SinkError(text, 'retry', `http_${status}`);
}

/** A network-level failure (refused, reset, timed out, TLS): always retried. */
export function networkFailure(err: unknown, what: string): SinkError {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const type = code === 'ETIMEDOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'timeout' ? 'timeout'
    // OpenSSL's verify codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ...) and Node's ERR_TLS_*/ERR_SSL_*.
    : code !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|VERIFY|HOSTNAME_MISMATCH/.test(code) ? 'tls' : 'unreachable';
  return new SinkError(`${what}: ${code ?? ''} ${String(e?.message ?? err)}`.trim(), 'retry', type, { cause: err });
}
