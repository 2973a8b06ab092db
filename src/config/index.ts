/** Configuration of the upload gateway: nginx-style files, programmatic objects and the built-in defaults. */
export type * from './types';
export { ConfigError } from './errors';
export { parseConfig, loadConfigFile, type ParseOptions } from './parse';
export { resolveConfig } from './resolve';
export type * from './input';
export { embeddedDefaults, embeddedConfigText, SAMPLE_BACKEND_COMPLETE_PATH, type EmbeddedDefaultsOptions } from './defaults';
export { parseSize, parseTime, formatSize, formatTime } from './units';
export {
  KNOWN_VARIABLES,
  UPLOAD_VARIABLES,
  UPLOADPROGRESS_VARIABLES,
  AGGREGATE_ONLY_VARIABLES,
  REQUEST_VARIABLES,
  REQUEST_VARIABLE_PREFIXES,
  isKnownVariable,
  isAggregateOnlyVariable,
  parseTemplate,
  compileTemplate,
  checkTemplateVariables,
  renderTemplate,
  templateUses,
  type TemplateContext,
} from '../protocol/templates';
export { tokenize, parseStatements, type Token, type Word, type Statement } from './lexer';
