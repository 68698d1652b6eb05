// The endpoint key of a device: devices with the same key share one connection or serial line, one
// request at a time. A pure function of the site config, so the site checks (duplicate addresses,
// the poll budget) and the Modbus endpoints use the same one.
import type { DeviceConfig } from './site-types.js';

type DeviceLink = Pick<DeviceConfig, 'transport' | 'host' | 'port' | 'serial'>;

/** "host:port" for Modbus TCP and RTU over TCP, the serial port for RTU. */
export function endpointKey(d: DeviceLink): string {
  return d.transport === 'rtu' ? d.serial?.device ?? '(no serial device)' : `${d.host ?? '(no host)'}:${d.port}`;
}
