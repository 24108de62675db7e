/**
 * Runs while mcconfig preloads the modules, before XS freezes the built-ins
 * (documentation/xs/preload.md, "Modifying Built-in Objects Behavior").
 *
 * Once `Error.prototype` is frozen, `this.name = '...'` in an Error
 * subclass's constructor (firmware/config.ts's ConfigError does it) throws
 * "not writable" in strict code: the inherited `name` is a non-writable data
 * property. An accessor instead lets each error get its own `name`. On the
 * host nothing is frozen, so the simulator never needs this.
 */
Object.defineProperty(Error.prototype, 'name', {
  get(): string {
    return 'Error';
  },
  set(this: Error, value: string) {
    Object.defineProperty(this, 'name', { value, writable: true, configurable: true, enumerable: false });
  },
  configurable: true,
  enumerable: false,
});

export {};
