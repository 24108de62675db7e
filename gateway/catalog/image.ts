/**
 * Product images as uploaded to the gateway: small raster images only, their
 * type read from their first bytes (what the uploader says is not trusted),
 * so that what is served back is always an image of the type it is served
 * as, never markup a browser would run (no SVG, no HTML).
 */

/** Largest product image taken (bytes): a thumbnail for a catalog, not a photo archive. */
export const MAX_PRODUCT_IMAGE_BYTES = 128 * 1024;

export const PRODUCT_IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
export type ProductImageType = (typeof PRODUCT_IMAGE_TYPES)[number];

const starts = (b: Uint8Array, at: number, ascii: string): boolean => {
  if (b.length < at + ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) if (b[at + i] !== ascii.charCodeAt(i)) return false;
  return true;
};

/** The image type these bytes are by their signature, or undefined when they are none of the four taken. */
export function sniffImageType(b: Uint8Array): ProductImageType | undefined {
  // PNG: its 8-byte signature, then the IHDR chunk that must come first.
  if (b.length >= 24 && b[0] === 0x89 && starts(b, 1, 'PNG\r\n\x1a\n') && starts(b, 12, 'IHDR')) return 'image/png';
  // JPEG: start of image, then a marker.
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 10 && (starts(b, 0, 'GIF87a') || starts(b, 0, 'GIF89a'))) return 'image/gif';
  // WebP: a RIFF container of form type WEBP whose first chunk is one of WebP's.
  if (b.length >= 16 && starts(b, 0, 'RIFF') && starts(b, 8, 'WEBP') && (starts(b, 12, 'VP8 ') || starts(b, 12, 'VP8L') || starts(b, 12, 'VP8X'))) return 'image/webp';
  return undefined;
}

/** Why these bytes are not a product image this gateway takes, or undefined when they are one. */
export function productImageProblem(b: Uint8Array, declared?: string): string | undefined {
  if (b.length === 0) return 'the image is empty';
  if (b.length > MAX_PRODUCT_IMAGE_BYTES) return `the image is ${b.length} bytes; at most ${MAX_PRODUCT_IMAGE_BYTES} are taken`;
  const type = sniffImageType(b);
  if (!type) return `the bytes are not a PNG, JPEG, GIF or WebP image (${PRODUCT_IMAGE_TYPES.join(', ')})`;
  if (declared !== undefined && declared !== 'application/octet-stream' && declared !== type) return `the upload says ${declared} but the bytes are ${type}`;
  return undefined;
}
