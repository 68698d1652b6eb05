// A TCP socket as a link of the endpoint: Modbus TCP, and RTU frames through a serial device server.
import net from 'node:net';
import type { Link } from './framing.js';

export function tcpLink(host: string, port: number): Link {
  return (h) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    let lastError: string | undefined;
    let closed = false;
    sock.on('data', (chunk: Buffer) => h.data(chunk));
    sock.on('error', (err) => { lastError = err.message; });
    sock.on('close', () => {
      closed = true;
      h.close(lastError);
    });
    sock.once('connect', () => h.open());
    return {
      write: (frame) => { sock.write(frame); },
      destroy: () => new Promise<void>((resolve) => {
        if (closed) return resolve();
        sock.once('close', () => resolve());
        sock.destroy();
      }),
    };
  };
}
