/**
 * The firmware-update pieces of an ESP32 build (docs/updates.md), checked by
 * tools/check-manifests.ts with the rest of a manifest:
 *
 * - the partition table has two OTA application slots (ota_0, ota_1) of
 *   the same size and no factory app (the board writes the one it is not
 *   running), each big enough for the application, and otadata (two
 *   sectors, where the bootloader keeps its choice);
 * - the project's sdkconfig (build.SDKCONFIGPATH/sdkconfig.defaults) turns
 *   on the bootloader's rollback and the custom partition table, and stamps
 *   the image's version into its application description, equal to
 *   FIRMWARE_VERSION (firmware/version.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIRMWARE_VERSION } from '../firmware/version.js';
import type { Partition } from './check-manifests.js';

/**
 * The smallest slot the check accepts. The real limit is the application's
 * size, which only an ESP-IDF build knows: it refuses an application larger
 * than the smallest app partition. This floor catches a table that could
 * never hold one (ESP-IDF with Wi-Fi and the XS engine are over 1 MiB).
 */
export const MIN_APP_SLOT = 0x100000;
/** otadata: two copies of the boot selection, a 4 KiB sector each. */
export const OTADATA_SIZE = 0x2000;

export interface OtaLayout {
  slotSize: number;
  otadata: Partition;
}

export function checkSlots(table: readonly Partition[], where: string): { problems: string[]; layout: OtaLayout | undefined } {
  const problems: string[] = [];
  const apps = table.filter((p) => p.type === 'app');
  const factory = apps.find((p) => p.subtype === 'factory');
  if (factory) problems.push(`${where}: app partition "${factory.name}" is a factory app: the board updates itself between two OTA slots (ota_0, ota_1), docs/updates.md`);
  const slots = ['ota_0', 'ota_1'].map((subtype) => apps.find((p) => p.subtype === subtype));
  const others = apps.filter((p) => p.subtype !== 'factory' && p.subtype !== 'ota_0' && p.subtype !== 'ota_1');
  for (const p of others) problems.push(`${where}: app partition "${p.name}" (${p.subtype}): only two slots, ota_0 and ota_1`);
  slots.forEach((p, i) => {
    if (!p) problems.push(`${where}: no app partition of subtype ota_${i}: firmware updates need two slots`);
    else if (p.size < MIN_APP_SLOT) problems.push(`${where}: app slot "${p.name}" has ${p.size} bytes, less than the ${MIN_APP_SLOT} an application needs`);
  });
  const [a, b] = slots;
  if (a && b && a.size !== b.size) problems.push(`${where}: app slots "${a.name}" (${a.size} bytes) and "${b.name}" (${b.size} bytes) differ: an image must fit either`);
  const otadata = table.find((p) => p.type === 'data' && p.subtype === 'ota');
  if (!otadata) problems.push(`${where}: no otadata partition (data, ota, ${OTADATA_SIZE} bytes): the bootloader keeps its choice of slot there`);
  else if (otadata.size !== OTADATA_SIZE || otadata.offset % 0x1000 !== 0) problems.push(`${where}: otadata must be ${OTADATA_SIZE} bytes on a 4 KiB boundary`);
  return { problems, layout: a && b && otadata && problems.length === 0 ? { slotSize: a.size, otadata } : undefined };
}

/** KEY=VALUE lines of an sdkconfig file (comments and blank lines skipped). */
export function parseSdkconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (!line || line.startsWith('#') || eq < 0) continue;
    out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

export function checkSdkconfig(dir: string | undefined, where: string): string[] {
  if (!dir || dir.includes('$(')) return [`${where}: build.SDKCONFIGPATH must name the project's sdkconfig directory`];
  const file = join(dir, 'sdkconfig.defaults');
  if (!existsSync(file)) return [`${where}: ${file} does not exist`];
  const config = parseSdkconfig(readFileSync(file, 'utf8'));
  const problems: string[] = [];
  const want: [string, string, string][] = [
    ['CONFIG_PARTITION_TABLE_CUSTOM', 'y', 'the partition table is the project\'s (build.PARTITIONS_FILE)'],
    ['CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE', 'y', 'an update boots on probation and the previous image comes back when it fails'],
    ['CONFIG_APP_PROJECT_VER_FROM_CONFIG', 'y', "the image's version comes from CONFIG_APP_PROJECT_VER"],
    ['CONFIG_APP_PROJECT_VER', `"${FIRMWARE_VERSION}"`, 'the application description carries FIRMWARE_VERSION (firmware/version.ts)'],
  ];
  for (const [key, value, why] of want) {
    const has = config.get(key);
    if (has !== value) problems.push(`${where}: ${file} ${has === undefined ? 'lacks' : `has ${key}=${has}, not`} ${key}=${value}: ${why}`);
  }
  return problems;
}
