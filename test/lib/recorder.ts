/**
 * The purchase state machine's boundary for tests, recorded: what it asked
 * the hardware to do. Portable (the firmware tests also run under XS).
 */
import type { Notice, VendPorts, VendState } from '../../firmware/vend/ports.js';

export class Recorder implements VendPorts {
  payable = new Set<number>([0]);
  payAll = false;
  log: string[] = [];
  timerMs = 0;
  notices: Notice[] = [];
  ignoredEvents: string[] = [];
  canPay(amount: number): boolean {
    return this.payAll || this.payable.has(amount);
  }
  dispense(slot: number): void {
    this.log.push(`dispense ${slot}`);
  }
  payout(amount: number): void {
    this.log.push(`payout ${amount}`);
  }
  escrow(stack: boolean): void {
    this.log.push(stack ? 'stack' : 'return');
  }
  sold(slot: number, price: number): void {
    this.log.push(`sold ${slot} ${price}`);
  }
  slotFailed(slot: number): void {
    this.log.push(`failed ${slot}`);
  }
  timer(ms: number): void {
    this.timerMs = ms;
  }
  notice(n: Notice): void {
    this.notices.push(n);
  }
  ignored(event: string, state: VendState): void {
    this.ignoredEvents.push(`${event}@${state}`);
  }
  changed(): void {}
  cardVendRequest(slot: number, price: number): void {
    this.log.push(`request ${slot} ${price}`);
  }
  cardVendCancel(): void {
    this.log.push('vend cancel');
  }
  cardEnd(): void {
    this.log.push('session complete');
  }
}
