// Which transport a device is reached through, as the endpoint needs it: the link (TCP socket or
// serial port) and the framing (MBAP or RTU). The endpoint key (devices with the same key share one
// connection or serial line) is a function of the config: src/config/endpoint-key.ts.
import { endpointKey } from '../config/endpoint-key.js';
import type { DeviceConfig, SerialSettings } from '../config/site-types.js';
import type { Framing, Link } from './framing.js';
import { TransactionIds, mbapFraming } from './framing-mbap.js';
import { rtuFraming } from './framing-rtu.js';
import { serialLink } from './link-serial.js';
import { tcpLink } from './link-tcp.js';

export type EndpointTarget =
  | { transport?: 'tcp'; host: string; port: number }
  | { transport: 'rtu_over_tcp'; host: string; port: number; serial: SerialSettings }
  | { transport: 'rtu'; serial: SerialSettings & { device: string } };

type DeviceLink = Pick<DeviceConfig, 'transport' | 'host' | 'port' | 'serial'>;

export function targetKey(t: EndpointTarget): string {
  return t.transport === 'rtu' ? t.serial.device : `${t.host}:${t.port}`;
}

/** The endpoint target of a validated device (the loader guarantees the keys its transport needs). */
export function deviceTarget(d: DeviceLink): EndpointTarget {
  const serial = d.serial;
  switch (d.transport ?? 'tcp') {
    case 'tcp': return { transport: 'tcp', host: d.host ?? '', port: d.port };
    case 'rtu_over_tcp':
      if (serial === undefined) throw new Error(`rtu_over_tcp device at ${endpointKey(d)} has no serial settings`);
      return { transport: 'rtu_over_tcp', host: d.host ?? '', port: d.port, serial };
    case 'rtu':
      if (serial?.device === undefined) throw new Error('rtu device has no serial.device');
      return { transport: 'rtu', serial: { ...serial, device: serial.device } };
  }
}

/** e.g. "10.0.0.5:502", "RTU /dev/ttyUSB0 9600 8E1", "RTU over TCP 10.0.0.9:4001 (9600 8N1)". */
export function describeLink(d: DeviceLink): string {
  const s = d.serial;
  const line = s === undefined ? '' : `${s.baud} ${s.data_bits}${s.parity[0]?.toUpperCase() ?? 'N'}${s.stop_bits}`;
  switch (d.transport ?? 'tcp') {
    case 'tcp': return endpointKey(d);
    case 'rtu': return `RTU ${endpointKey(d)} ${line}`;
    case 'rtu_over_tcp': return `RTU over TCP ${endpointKey(d)} (${line})`;
  }
}

/** `random` seeds the transaction ids (tests); default a cryptographic key per endpoint. */
export function makeTransport(t: EndpointTarget, random?: () => number): { link: Link; framing: Framing } {
  if (t.transport === 'rtu') return { link: serialLink(t.serial.device, t.serial), framing: rtuFraming(t.serial) };
  if (t.transport === 'rtu_over_tcp') return { link: tcpLink(t.host, t.port), framing: rtuFraming(t.serial) };
  return { link: tcpLink(t.host, t.port), framing: mbapFraming(new TransactionIds(random)) };
}
