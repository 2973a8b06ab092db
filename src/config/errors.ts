/**
 * Configuration errors. Every mistake in a configuration is refused at start-up with the file,
 * the line and the reason (D20), instead of surfacing later as a crash or a wrong answer.
 */

/** A configuration mistake. `message` is `<file>:<line>: <reason>` (`<file>: <reason>` when there is no line). */
export class ConfigError extends Error {
  readonly file: string;
  /** 1-based line; 0 when the configuration did not come from text (`resolveConfig`). */
  readonly line: number;
  readonly reason: string;

  constructor(file: string, line: number, reason: string) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

import { ValueError } from '../protocol/value-error';

export { ValueError };

/** Where a value was written: a file line, or a key of a programmatic configuration object. */
export interface Where {
  file: string;
  line: number;
  /** Key path in a configuration object (`locations[0].maxFileSize`); prefixed to the reason. */
  key?: string;
}

export function configError(where: Where, reason: string): ConfigError {
  return new ConfigError(where.file, where.line, where.key ? `${where.key}: ${reason}` : reason);
}

/** Runs a value parser and reports its `ValueError` as a `ConfigError` at `where`. */
export function atWhere<T>(where: Where, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ValueError) throw configError(where, err.message);
    throw err;
  }
}

/** `file:line` (or `file key`) for messages and `LocationConfig.origin`. */
export function describeWhere(where: Where): string {
  if (where.line > 0) return `${where.file}:${where.line}`;
  return where.key ? `${where.file} ${where.key}` : where.file;
}
