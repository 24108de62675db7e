/**
 * The embedded MQTT broker (aedes) for the default setup: no services to
 * install. Listens on 1883 when that port is free, otherwise on any free port.
 */
import { Aedes, type AuthenticateError } from 'aedes';
import { createServer, type Server } from 'node:net';
import { mayPublish, maySubscribe, type Identity } from './acl.js';

/** Checks a connection's credentials; undefined refuses it. */
export type CredentialCheck = (username: string, password: Buffer) => Promise<Identity | undefined>;

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

/**
 * With `credentials`, every connection must log in (a machine as itself, the
 * gateway as "gateway") and the topic ACLs hold: a machine publishes only its
 * own uplink topics and reads only its own acks and commands. Without, the
 * broker is open (tests of other parts).
 */
export async function startEmbeddedBroker(options: { port?: number; host?: string; credentials?: CredentialCheck } = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const check = options.credentials;
  const identities = new WeakMap<object, Identity>();
  const refuse = (code: number, message: string): AuthenticateError => Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
  const aedes = await Aedes.createBroker(
    check
      ? {
          authenticate: (client, username, password, done) => {
            if (!username || !password) return done(refuse(4, 'credentials needed'), false);
            check(username, password).then(
              (who) => {
                if (!who) return done(refuse(4, 'bad user name or password'), false);
                // A machine logs in with its own id as the client id too: no one takes over another's session.
                if (who.kind === 'machine' && client.id !== who.id) return done(refuse(2, 'client id must be the machine id'), false);
                identities.set(client, who);
                done(null, true);
              },
              () => done(refuse(3, 'credential store unavailable'), false),
            );
          },
          authorizePublish: (client, packet, callback) => {
            // The broker's own publications (a last will is checked at connect through the client) pass.
            const who = client ? identities.get(client) : undefined;
            if (client && (!who || !mayPublish(who, packet.topic))) return callback(new Error(`not allowed to publish to ${packet.topic}`));
            callback(null);
          },
          authorizeSubscribe: (client, sub, callback) => {
            const who = identities.get(client);
            // Refused with a failure code in the SUBACK (0x80); the connection stays.
            if (!who || !maySubscribe(who, sub.topic)) return callback(null, null);
            callback(null, sub);
          },
        }
      : {},
  );
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
