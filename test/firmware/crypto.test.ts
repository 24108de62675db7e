import { fromHex, HmacSha256, sameBytes } from '../../firmware/crypto/hmac.js';
import { Sha256 } from '../../firmware/crypto/sha256.js';
import { encodeUtf8 } from '../../firmware/text/utf8.js';
import { equal, ok } from '../lib/assert.js';

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

const text = (s: string): Uint8Array => new Uint8Array(encodeUtf8(s));

describe('SHA-256 and HMAC-SHA-256', () => {
  it('matches the FIPS 180-4 examples', () => {
    const h = new Sha256();
    equal(hex(h.update(text('')).digest()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    equal(hex(h.update(text('abc')).digest()), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    equal(hex(h.update(text('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).digest()), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('gives the same digest however the input is split', () => {
    const data = new Uint8Array(300);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 255;
    const whole = hex(new Sha256().update(data).digest());
    for (const cut of [1, 55, 56, 63, 64, 65, 128, 200]) {
      equal(hex(new Sha256().update(data, 0, cut).update(data, cut).digest()), whole, `split at ${cut}`);
    }
  });

  it('matches the RFC 4231 test cases', () => {
    const key1 = new Uint8Array(20).fill(0x0b);
    equal(hex(new HmacSha256(key1).sign(text('Hi There'))), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
    equal(hex(new HmacSha256(text('Jefe')).sign(text('what do ya want for nothing?'))), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    const key6 = new Uint8Array(131).fill(0xaa);
    equal(hex(new HmacSha256(key6).sign(text('Test Using Larger Than Block-Size Key - Hash Key First'))), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('signs a range of a buffer and compares in constant shape', () => {
    const mac = new HmacSha256(text('Jefe'));
    const framed = text('xxwhat do ya want for nothing?yy');
    equal(hex(mac.sign(framed, undefined, 2, framed.length - 2)), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    const a = fromHex('00ff10')!;
    ok(sameBytes(a, fromHex('00FF10')!));
    ok(!sameBytes(a, fromHex('00ff11')!));
    ok(!sameBytes(a, fromHex('00ff')!));
    equal(fromHex('0g'), undefined);
    equal(fromHex('abc'), undefined);
  });
});
