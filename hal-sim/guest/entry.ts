/**
 * Bundle entry: installs the guest on the global object. In Node the host
 * calls `vendfleetGuest.deliver` directly; under XS the engine's command
 * channel calls `handleCommand` with JSON bytes.
 *
 * The guest (and its board) is made at the first message, not when the bundle
 * loads: loading then builds only the modules, which is what the device
 * preloads into flash, so the heap measured after loading is the code alone
 * (hal-sim/xs/heap.ts) and the board's objects count as running state.
 */
import { Guest } from './guest.js';
import type { HostMessage } from './protocol.js';

interface TextCodecs {
  TextEncoder: new () => { encode(s: string): Uint8Array };
  TextDecoder: new () => { decode(b: ArrayBuffer | Uint8Array): string };
}

let made: Guest | undefined;
const guest = (): Guest => (made ??= new Guest());
const g = globalThis as unknown as Record<string, unknown> & Partial<TextCodecs>;

g['vendfleetGuest'] = {
  // JSON text in and out, exactly what crosses the XS command channel.
  deliverJson: (text: string): string => JSON.stringify(guest().deliver(JSON.parse(text) as HostMessage)),
  // The firmware's Board, for a host script playing a part of the firmware that is not built yet
  // (MachineHost.runInGuest): what it does goes out with the next reply, like the firmware's own doings.
  get board() {
    return guest().board;
  },
};

g['handleCommand'] = (bytes: ArrayBuffer): ArrayBuffer => {
  const codecs = g as TextCodecs;
  const message = JSON.parse(new codecs.TextDecoder().decode(bytes)) as HostMessage;
  const reply = guest().deliver(message);
  const out = new codecs.TextEncoder().encode(JSON.stringify(reply));
  return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
};
