/**
 * Character codes of a string without garbage. Under XS, `s.charCodeAt(i)`
 * and even `s.length` on a primitive string box it in a String object for
 * the call (measured: 4 and 2 heap slots each); calling the prototype's
 * function with the string as `this` boxes nothing. Loops over text on the
 * device use these.
 */
const CHAR_CODE_AT = String.prototype.charCodeAt;

export function charCode(s: string, i: number): number {
  return CHAR_CODE_AT.call(s, i);
}
