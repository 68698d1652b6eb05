// A serial port as a link of the endpoint (transport rtu), through the `serialport` package: the
// same package and version modbus-serial uses, so the lockfile gains nothing. It is loaded on the
// first open only: a site without serial lines never loads the native bindings, and a box whose
// platform has no prebuilt binding still runs its Modbus TCP devices (the serial line reports why).
// Why serialport and not modbus-serial's RTU client on top of it: see framing-rtu.ts and
// docs/modbus.md ("Modbus RTU").
import type { SerialSettings } from '../config/site-types.js';
import type { Link } from './framing.js';

type SerialPortClass = typeof import('serialport').SerialPort;
let loading: Promise<SerialPortClass> | undefined;

function serialPortClass(): Promise<SerialPortClass> {
  loading ??= import('serialport').then((m) => m.SerialPort);
  return loading;
}

export function serialLink(device: string, s: SerialSettings): Link {
  return (h) => {
    type Port = InstanceType<SerialPortClass>;
    let port: Port | undefined;
    let lastError: string | undefined;
    let closed = false;
    let cancelled = false;
    const close = (reason: string | undefined): void => {
      if (closed) return;
      closed = true;
      h.close(reason);
    };
    serialPortClass().then((SerialPort) => {
      if (cancelled) return close(undefined);
      const p = new SerialPort({
        path: device, baudRate: s.baud, dataBits: s.data_bits, stopBits: s.stop_bits, parity: s.parity, autoOpen: false,
        // An exclusive lock: a second process on the same line would interleave frames with ours.
        lock: true,
      });
      port = p;
      p.on('data', (chunk: Buffer) => h.data(chunk));
      p.on('error', (err: Error) => { lastError = err.message; });
      p.on('close', () => close(lastError));
      p.open((err) => {
        if (err) return close(err.message);
        // Given up while opening: release the port (and its lock) at once.
        if (cancelled) return p.close();
        h.open();
      });
    }, (err: unknown) => close(`serial port support is not available on this machine (serialport: ${err instanceof Error ? err.message : String(err)})`));
    return {
      write: (frame) => { port?.write(frame); },
      destroy: () => new Promise<void>((resolve) => {
        cancelled = true;
        const p = port;
        if (closed || p === undefined || !p.isOpen) {
          close(undefined);
          return resolve();
        }
        p.close(() => { close(undefined); resolve(); });
      }),
    };
  };
}
