/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * Wi-Fi in the background. The manifest removes the SDK's `setup/network`
 * module, which holds `main` back until the station has an address: a
 * vending machine sells without a network, so the firmware starts at once
 * and the uplink's own backoff copes while the station is down. This keeps
 * the station joined, retrying with a growing pause when the access point
 * goes away.
 */
import WiFi from 'embedded:network/interface/wifi';
import Timer, { type TimerHandle } from 'timer';
import type { LogLevel } from '../../board.js';

const RETRY_MIN_MS = 5000;
const RETRY_MAX_MS = 120000;
const CONNECTED = 500;
const DISCONNECTED = 200;

export class WifiStation {
  private readonly ssid: string;
  private readonly password: string;
  private readonly log: (level: LogLevel, message: string) => void;
  private readonly onUp: () => void;
  private wifi: WiFi | undefined;
  private retry: TimerHandle | undefined;
  private pauseMs = RETRY_MIN_MS;
  private up = false;

  /** `onUp`: the station has an address (again). */
  constructor(ssid: string, password: string, log: (level: LogLevel, message: string) => void, onUp: () => void = () => {}) {
    this.ssid = ssid;
    this.password = password;
    this.log = log;
    this.onUp = onUp;
    this.join();
  }

  get connected(): boolean {
    return this.up;
  }

  private join(): void {
    this.retry = undefined;
    try {
      this.wifi ??= new WiFi({ onChanged: () => this.changed() });
      this.wifi.connect(this.password ? { SSID: this.ssid, password: this.password } : { SSID: this.ssid });
    } catch (e) {
      this.log('warn', `Wi-Fi: ${e instanceof Error ? e.message : 'connect failed'}`);
      this.later();
    }
  }

  private changed(): void {
    const state = this.wifi?.connection ?? DISCONNECTED;
    if (state >= CONNECTED) {
      const was = this.up;
      if (!was) this.log('info', `Wi-Fi: "${this.ssid}" ${this.wifi?.address ?? ''}`);
      this.up = true;
      this.pauseMs = RETRY_MIN_MS;
      if (!was) this.onUp();
    } else if (state <= DISCONNECTED) {
      if (this.up) this.log('warn', `Wi-Fi: lost "${this.ssid}"`);
      this.up = false;
      this.later();
    }
  }

  private later(): void {
    if (this.retry !== undefined) return;
    this.retry = Timer.set(() => this.join(), this.pauseMs);
    this.pauseMs = Math.min(RETRY_MAX_MS, this.pauseMs * 2);
  }
}
