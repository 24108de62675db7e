/**
 * Unix seconds to the calendar date and time EVA-DTS writes (UTC), in
 * integers only: the days-to-civil conversion for the proleptic Gregorian
 * calendar, counted in 400-year eras so that it is exact for every date.
 */

function two(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** YYYYMMDD and HHMMSS of a Unix time (seconds, UTC). */
export function dexDateTime(unixSeconds: number): { date: string; time: string } {
  const days = Math.floor(unixSeconds / 86400);
  const secs = unixSeconds - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return { date: String(year) + two(month) + two(day), time: two(h) + two(m) + two(secs % 60) };
}
