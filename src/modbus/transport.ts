// Which transport an endpoint talks through: the endpoint key (devices with the same key share
// one connection, one request at a time), the link (a TCP socket) and the framing (MBAP).
import type { Framing, Link } from './framing.js';
import { TransactionIds, mbapFraming } from './framing-mbap.js';
import { tcpLink } from './link-tcp.js';

export type EndpointTarget = { transport?: 'tcp'; host: string; port: number };

export function targetKey(t: EndpointTarget): string {
  return `${t.host}:${t.port}`;
}

/** `random` seeds the transaction ids (tests); default a cryptographic key per endpoint. */
export function makeTransport(t: EndpointTarget, random?: () => number): { link: Link; framing: Framing } {
  return { link: tcpLink(t.host, t.port), framing: mbapFraming(new TransactionIds(random)) };
}
