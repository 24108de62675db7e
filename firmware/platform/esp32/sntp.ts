/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The board's calendar clock (Board.wallClock): an SNTP client (RFC 4330)
 * on `embedded:io/socket/udp` sets the system time (`Time.set`), which `Date`
 * reads. Until the first answer the ESP32 counts from 1970, which the clock
 * reports as unknown.
 *
 * Asked when the Wi-Fi gets an address, then every six hours; a request is
 * sent again every 5 s, four times, then the whole exchange is tried again
 * later (a minute, doubling to an hour). An answer counts only if it echoes
 * this request's random transmit time (so a blind spoofer cannot set the
 * clock), is a server's (mode 4) and synchronised (stratum 1 to 15, leap
 * indicator not 3). SNTP is not authenticated all the same: the firmware
 * never lets this clock undo what signed commands taught it
 * (firmware/command/wall.ts).
 */
import UDP, { type Datagram } from 'embedded:io/socket/udp';
import Resolver from 'embedded:network/dns/resolver/udp';
import Time from 'time';
import Timer, { type TimerHandle } from 'timer';
import type { LogLevel, WallClock } from '../../board.js';
import { MIN_WALL_S } from '../../command/wall.js';

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX = 2208988800;
const RESEND_MS = 5000;
const SENDS = 4;
const RESYNC_MS = 6 * 3600 * 1000;
const RETRY_MIN_MS = 60000;
const RETRY_MAX_MS = 3600000;

export class SntpClock implements WallClock {
  private readonly host: string;
  private readonly dns: readonly string[];
  private readonly log: (level: LogLevel, message: string) => void;
  private socket: UDP | undefined;
  private resolver: Resolver | undefined;
  private timer: TimerHandle | undefined;
  private next: TimerHandle | undefined;
  private readonly request = new Uint8Array(48);
  private retryMs = RETRY_MIN_MS;
  private synced = false;

  constructor(host: string, dns: readonly string[], log: (level: LogLevel, message: string) => void) {
    this.host = host;
    this.dns = dns;
    this.log = log;
  }

  now(): number | undefined {
    const ms = Date.now();
    return ms >= MIN_WALL_S * 1000 ? ms : undefined;
  }

  /** Ask the server now (the network just came up); a no-op without a server or while an exchange is under way. */
  sync(): void {
    if (!this.host || this.resolver || this.socket) return;
    Timer.clear(this.next);
    this.next = undefined;
    try {
      this.resolver = new Resolver({ servers: this.dns, socket: { io: UDP } });
      this.resolver.resolve({
        host: this.host,
        onResolved: (_host, address) => this.ask(address),
        onError: () => this.failed(`cannot resolve ${this.host}`),
      });
    } catch (e) {
      this.failed(e instanceof Error ? e.message : 'resolver failed');
    }
  }

  private ask(address: string): void {
    this.resolver?.close();
    this.resolver = undefined;
    const self = this;
    // Version 4, client; the transmit time is a random cookie the server must echo as the originate time.
    this.request.fill(0);
    this.request[0] = (4 << 3) | 3;
    for (let i = 40; i < 48; i++) this.request[i] = (Math.random() * 256) | 0;
    try {
      this.socket = new UDP({
        onReadable(count: number) {
          while (count-- > 0) {
            const d = this.read();
            if (d) self.received(d, address);
          }
        },
      });
    } catch (e) {
      return this.failed(e instanceof Error ? e.message : 'no socket');
    }
    let sends = 0;
    const send = (): void => {
      if (sends++ === SENDS) return this.failed(`no answer from ${this.host}`);
      try {
        this.socket?.write(address, 123, this.request);
      } catch {
        // The network went away between sends: the next send or the retry tries again.
      }
    };
    send();
    this.timer = Timer.repeat(send, RESEND_MS);
  }

  private received(d: Datagram, address: string): void {
    if (d.address !== address || d.byteLength < 48) return;
    const b = new Uint8Array(d, 0, 48);
    for (let i = 0; i < 8; i++) if (b[24 + i] !== this.request[40 + i]) return;
    const leap = b[0]! >> 6;
    const mode = b[0]! & 7;
    const stratum = b[1]!;
    if (mode !== 4 || leap === 3 || stratum < 1 || stratum > 15) return this.failed(`${this.host} is not synchronised (stratum ${stratum})`);
    const v = new DataView(d, 40, 4);
    const ntp = v.getUint32(0);
    // Era 1 (from 2036) starts over at 0: a small count is after the wrap.
    const unix = (ntp >= 0x80000000 ? ntp : ntp + 0x100000000) - NTP_UNIX;
    this.close();
    Time.set(unix);
    if (!this.synced) this.log('info', `clock: ${new Date(unix * 1000).toISOString()} from ${this.host}`);
    this.synced = true;
    this.retryMs = RETRY_MIN_MS;
    this.next = Timer.set(() => this.sync(), RESYNC_MS);
  }

  private failed(why: string): void {
    this.close();
    Timer.clear(this.next);
    if (!this.synced) this.log('warn', `clock: ${why}; trying again in ${this.retryMs / 1000} s`);
    this.next = Timer.set(() => this.sync(), this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  private close(): void {
    Timer.clear(this.timer);
    this.timer = undefined;
    this.socket?.close();
    this.socket = undefined;
    this.resolver?.close();
    this.resolver = undefined;
  }
}
