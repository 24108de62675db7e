/** The firmware running behind the HAL bridge: one message in, one reply out. */
import { start, type Firmware } from '../../firmware/main.js';
import { BridgeBoard } from './bridge-board.js';
import type { GuestReply, HostMessage } from './protocol.js';

export class Guest {
  readonly board = new BridgeBoard();
  private firmware: Firmware | undefined;

  deliver(message: HostMessage): GuestReply {
    const board = this.board;
    if (message.t > board.now) board.now = message.t;
    if (message.w !== undefined) board.wall = message.w;
    let error: string | undefined;
    let status;
    try {
      if (message.boot !== undefined) {
        this.firmware?.stop();
        if (message.flash) board.loadFlash(message.flash);
        if (message.slots) board.loadSlots(message.slots);
        this.firmware = start(board, message.boot);
      }
      if (message.ev) {
        for (const ev of message.ev) {
          if (ev[0] === 'ack') this.firmware?.acknowledge(ev[1]);
          else board.apply(ev);
        }
      }
      board.runTimers();
      if (message.status && this.firmware) status = this.firmware.status();
    } catch (e) {
      error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    }
    const reply: GuestReply = { ops: board.takeOps(), wake: board.nextDeadline() };
    if (status) reply.status = status;
    if (error !== undefined) reply.error = error;
    return reply;
  }
}
