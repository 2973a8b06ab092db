/**
 * A value that cannot be accepted, thrown by the value parsers (sizes, times, templates, …), which
 * do not know where the value came from. The configuration turns it into a `ConfigError` with the
 * file and line (`config/errors.ts`, `atWhere`).
 */
export class ValueError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ValueError';
  }
}
