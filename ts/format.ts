/**
 * Text of any thrown or given value, for messages and reports. Never
 * throws: a null-prototype object, a revoked Proxy, a throwing `toString`,
 * `stack` or `message` getter, or a Proxy whose traps throw all get a
 * description.
 */
import { inspect } from 'util';

/** `value` as text for a message: strings as they are, errors with their stack, anything else inspected. */
export function describeValue(value: unknown, withStack = false): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' && typeof value !== 'function') {
    try {
      return String(value);
    } catch {
      // a Symbol never throws; a BigInt neither: unreachable, but cheap
    }
  }
  if (withStack) {
    try {
      if (value instanceof Error) {
        const stack: unknown = value.stack;
        if (typeof stack === 'string' && stack !== '') return stack;
      }
    } catch {
      // a Proxy's trap or a getter threw: inspect() below copes
    }
  }
  try {
    if (value instanceof Error) {
      const message: unknown = value.message;
      const name: unknown = value.name;
      if (typeof message === 'string') return typeof name === 'string' && name !== '' ? `${name}: ${message}` : message;
    }
  } catch {
    // as above
  }
  try {
    return inspect(value, { depth: 2, breakLength: Infinity });
  } catch {
    // an exotic object inspect() cannot cope with
  }
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return `<unprintable ${typeof value}>`;
  }
}

/** `value` for "got ..." in a message about an invalid argument: its type and (short) value. */
export function describeGiven(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : `the number ${String(value)}`;
  if (typeof value === 'bigint') return `the BigInt ${String(value)}n`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return `${String(value)}`;
  if (typeof value === 'symbol') return `a symbol (${describeValue(value)})`;
  if (typeof value === 'function') return 'a function';
  let isArray = false;
  try {
    isArray = Array.isArray(value);
  } catch {
    return 'a revoked Proxy';
  }
  if (isArray) return `an array (${describeValue(value)})`;
  return `an object (${describeValue(value)})`;
}
