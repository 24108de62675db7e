/** Little-endian readers for journal bytes (records, checkpoints). */
export function u16(d: Uint8Array, o: number): number {
  return d[o]! | (d[o + 1]! << 8);
}

export function u32(d: Uint8Array, o: number): number {
  return (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24)) >>> 0;
}
