/// <reference path="../../../types/moddable/index.d.ts" />
/**
 * The machine configuration on the device: the JSON resource the manifest
 * puts in flash (config.machine names it), with the secrets that must not be
 * committed (the MQTT password, the command key) laid over it from mcconfig
 * arguments. firmware/config.ts checks all of it at start.
 */
import Resource from 'Resource';
import { decodeUtf8 } from '../../text/utf8.js';
import type { BoardSettings } from './settings.js';

export function readMachineConfig(settings: BoardSettings): unknown {
  if (!Resource.exists(settings.machine)) throw new Error(`no resource "${settings.machine}" (config.machine)`);
  const resource = new Resource(settings.machine);
  const config: unknown = JSON.parse(decodeUtf8(resource.slice(0)));
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`${settings.machine} must hold a JSON object`);
  const machine = config as Record<string, unknown>;
  if (settings.commandKey !== undefined) machine['commandKey'] = settings.commandKey;
  const uplink = machine['uplink'];
  if (settings.mqttPassword !== undefined && typeof uplink === 'object' && uplink !== null && !Array.isArray(uplink)) {
    (uplink as Record<string, unknown>)['password'] = settings.mqttPassword;
  }
  return machine;
}
