// An embedded MQTT broker (aedes, MQTT 3.1.1) so the demo and tests need nothing installed.
// aedes speaks MQTT 3.1.1 only: clients talking to it use protocol_version 4.
import net from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  readonly port: number;
  readonly url: string;
  readonly broker: Aedes;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(opts: { host?: string; port?: number } = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? '127.0.0.1';
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('embedded broker: no TCP address');
  const port = address.port;
  return {
    port,
    url: `mqtt://${host}:${port}`,
    broker,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
