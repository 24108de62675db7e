/**
 * ISO 4217 numeric codes for the currencies vending machines commonly take.
 * EVA-DTS writes them in ID4 with a leading 1 (a leading 0 would mean an
 * ISO 3166 country code instead, as older files had).
 */
const NUMERIC: { readonly [alpha: string]: number } = Object.freeze({
  AUD: 36, BRL: 986, CAD: 124, CHF: 756, CNY: 156, CZK: 203, DKK: 208, EUR: 978, GBP: 826, HKD: 344, HUF: 348, INR: 356, JPY: 392,
  KRW: 410, MXN: 484, NOK: 578, NZD: 554, PLN: 985, RON: 946, SEK: 752, SGD: 702, TRY: 949, USD: 840, ZAR: 710,
});

/** The ISO 4217 numeric code for an alphabetic one (840 for USD), 0 when this table lacks it. */
export function isoNumeric(alpha: string): number {
  return NUMERIC[alpha] ?? 0;
}

/** The ID4 currency element for an ISO 4217 alphabetic code, '' when this table lacks it. */
export function dexCurrency(alpha: string): string {
  const n = NUMERIC[alpha];
  if (n === undefined) return '';
  return '1' + String(n + 1000).slice(1);
}
