/**
 * The embedded MQTT broker (aedes) for the default setup: no services to
 * install. Listens on 1883 when that port is free, otherwise on any free port.
 */
import { Aedes } from 'aedes';
import { createServer, type Server } from 'node:net';

export interface EmbeddedBroker {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

export async function startEmbeddedBroker(options: { port?: number; host?: string } = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  const server = createServer(aedes.handle);
  let port: number;
  try {
    port = await listen(server, options.port ?? 1883, host);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || options.port !== undefined) throw e;
    // 1883 is taken (a Mosquitto on this machine, another vendfleet): any free port will do.
    port = await listen(server, 0, host);
  }
  return {
    url: `mqtt://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        aedes.close(() => {});
      }),
  };
}
