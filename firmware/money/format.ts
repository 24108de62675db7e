/** Money is integer minor units everywhere; this only renders it for people. */
export function formatMoney(minor: number, decimals: number): string {
  const negative = minor < 0;
  let v = negative ? -minor : minor;
  let text: string;
  if (decimals <= 0) {
    text = String(v);
  } else {
    let scale = 1;
    for (let i = 0; i < decimals; i++) scale *= 10;
    const whole = Math.floor(v / scale);
    v -= whole * scale;
    let frac = String(v);
    while (frac.length < decimals) frac = '0' + frac;
    text = `${whole}.${frac}`;
  }
  return negative ? '-' + text : text;
}
