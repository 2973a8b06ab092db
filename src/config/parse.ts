/**
 * The configuration file: nginx syntax, the module's directives (spec §10) plus the few nginx core
 * and gateway directives the gateway needs. Anything it does not understand is refused with the
 * file, the line and the reason (D20): a directive that silently did nothing would be a surprise
 * in production.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atWhere, ConfigError, configError, type Where } from './errors';
import { finalizeConfig, newScope, type ConfigDraft, type LocationDraft, type ScopeDraft } from './finalize';
import { parseStatements, type Statement, type Word } from './lexer';
import { progressTemplateValue, SETTING_BY_DIRECTIVE, type SettingKey } from './settings';
import type { GatewayConfig } from './types';
import { parseFlag, parseListen } from './values';
import { parseSize } from './units';
import { OUTPUT_CONTENT_TYPES, outputTemplates, type ProgressOutput } from '../protocol/upload-progress';

/** The smallest `upload_progress` zone nginx accepts: 8 pages of 4 KiB (spec upload-progress-module.md §2). */
export const MIN_PROGRESS_ZONE = 32 * 1024;

const PROGRESS_OUTPUTS: ReadonlyMap<string, ProgressOutput> = new Map([
  ['upload_progress_json_output', 'json'],
  ['upload_progress_jsonp_output', 'jsonp'],
  ['upload_progress_java_output', 'java'],
]);

export { ConfigError } from './errors';

type BlockKind = 'main' | 'http' | 'server' | 'location';

export interface ParseOptions {
  /** Directory relative paths are resolved against; default: the directory of `fileName`. */
  baseDir?: string;
}

interface ParseState {
  file: string;
  baseDir: string;
  draft: ConfigDraft;
  http: Where | null;
  server: Where | null;
  listen: Where | null;
  demoPage: Where | null;
}

const NOT_SUPPORTED_BLOCKS: ReadonlyMap<string, string> = new Map([
  ['if', '"if" blocks are not supported (the gateway has no rewrite module)'],
  ['limit_except', '"limit_except" blocks are not supported (upload locations accept POST and OPTIONS only)'],
]);

function argCountError(where: Where, name: string): ConfigError {
  return configError(where, `invalid number of arguments in "${name}" directive`);
}

function expectSimple(statement: Statement, where: Where): void {
  if (statement.block !== null) throw configError(where, `directive "${statement.name}" is not terminated by ";"`);
}

function expectBlock(statement: Statement, where: Where): Statement[] {
  if (statement.block === null) throw configError(where, `directive "${statement.name}" has no opening "{"`);
  return statement.block;
}

function notAllowed(where: Where, name: string, why = ''): ConfigError {
  return configError(where, `"${name}" directive is not allowed here${why}`);
}

/** `location [=|^~] /uri`, `location =/uri`, `location @name`; regex locations are refused. */
function parseLocationArgs(args: Word[], where: Where): { match: LocationDraft['match']; path: string } {
  let modifier = '';
  let uri: string;
  if (args.length === 2) {
    modifier = args[0].value;
    uri = args[1].value;
  } else if (args.length === 1) {
    const text = args[0].value;
    const m = /^(=|\^~|~\*|~)?(.*)$/s.exec(text) as RegExpExecArray;
    modifier = m[1] ?? '';
    uri = m[2];
  } else {
    throw argCountError(where, 'location');
  }
  if (modifier === '~' || modifier === '~*') throw configError(where, 'regular expression locations are not supported');
  if (modifier !== '' && modifier !== '=' && modifier !== '^~') throw configError(where, `invalid location modifier "${modifier}"`);
  if (uri.length === 0) throw configError(where, 'empty location path');
  if (uri.startsWith('@')) {
    if (modifier !== '') throw configError(where, `invalid location modifier "${modifier}" for a named location`);
    return { match: 'named', path: uri };
  }
  // Without regex locations, `^~` (no regex check after a prefix match) is an ordinary prefix.
  return { match: modifier === '=' ? 'exact' : 'prefix', path: uri };
}

function parseListenArgs(args: Word[], where: Where): { host: string; port: number } {
  if (args.length === 0) throw argCountError(where, 'listen');
  for (const param of args.slice(1)) {
    // The gateway has one server, so default_server changes nothing; anything else would be ignored silently.
    if (param.value !== 'default_server') throw configError(where, `listen parameter "${param.value}" is not supported`);
  }
  return atWhere(where, () => parseListen(args[0].value));
}

function walkBlock(statements: Statement[], kind: BlockKind, scope: ScopeDraft, state: ParseState, location: LocationDraft | null): void {
  // Directives already given in this block, for "is duplicate".
  const given = new Set<string>();
  const once = (key: string, where: Where, name: string): void => {
    if (given.has(key)) throw configError(where, `"${name}" directive is duplicate`);
    given.add(key);
  };
  const topLevel = kind !== 'location';

  for (const statement of statements) {
    const { name, args } = statement;
    const where: Where = { file: state.file, line: statement.line };

    const unsupported = NOT_SUPPORTED_BLOCKS.get(name);
    if (unsupported) throw configError(where, unsupported);

    switch (name) {
      case 'http': {
        if (kind !== 'main') throw notAllowed(where, name);
        if (state.http) throw configError(where, '"http" directive is duplicate');
        if (state.server) throw configError(where, 'the "http" block must enclose the "server" block');
        const block = expectBlock(statement, where);
        if (args.length > 0) throw argCountError(where, name);
        state.http = where;
        const inner = newScope(scope);
        state.draft.top = inner;
        walkBlock(block, 'http', inner, state, null);
        continue;
      }
      case 'server': {
        if (kind !== 'main' && kind !== 'http') throw notAllowed(where, name);
        if (state.server) throw configError(where, 'only one "server" block is supported');
        if (kind === 'main' && state.http) throw configError(where, 'the "server" block must be inside the "http" block');
        const block = expectBlock(statement, where);
        if (args.length > 0) throw argCountError(where, name);
        state.server = where;
        const inner = newScope(scope);
        state.draft.top = inner;
        walkBlock(block, 'server', inner, state, null);
        continue;
      }
      case 'location': {
        if (!topLevel) throw notAllowed(where, name, ' (nested locations are not supported)');
        const block = expectBlock(statement, where);
        const { match, path: uri } = parseLocationArgs(args, where);
        const draft: LocationDraft = {
          match,
          path: uri,
          where,
          scope: newScope(scope),
          uploadPass: null,
          proxyPass: null,
          internal: null,
          reportUploads: null,
        };
        state.draft.locations.push(draft);
        walkBlock(block, 'location', draft.scope, state, draft);
        continue;
      }
      case 'listen': {
        if (!topLevel) throw notAllowed(where, name);
        expectSimple(statement, where);
        if (state.listen) throw configError(where, '"listen" directive is duplicate');
        state.listen = where;
        state.draft.listen = parseListenArgs(args, where);
        continue;
      }
      case 'upload_pass':
      case 'proxy_pass': {
        if (!location) throw notAllowed(where, name);
        expectSimple(statement, where);
        if (args.length !== 1) throw argCountError(where, name);
        once(name, where, name);
        const target = { value: args[0].value, where };
        if (name === 'upload_pass') location.uploadPass = target;
        else location.proxyPass = target;
        continue;
      }
      case 'internal': {
        if (!location) throw notAllowed(where, name);
        expectSimple(statement, where);
        if (args.length !== 0) throw argCountError(where, name);
        once(name, where, name);
        location.internal = where;
        continue;
      }
      case 'upload_progress': {
        // nginx: http context only (the file's top level is our http).
        if (kind !== 'main' && kind !== 'http') throw notAllowed(where, name);
        expectSimple(statement, where);
        if (args.length !== 2) throw argCountError(where, name);
        const [zone, sizeText] = args.map((a) => a.value);
        if (zone.length === 0) throw configError(where, 'empty zone name in "upload_progress" directive');
        if (state.draft.progressZones.has(zone)) throw configError(where, `upload_progress "${zone}" is already created`);
        const size = atWhere(where, () => parseSize(sizeText));
        if (size < MIN_PROGRESS_ZONE) throw configError(where, `upload_progress "${zone}" is too small (${sizeText}): at least 32k`);
        state.draft.progressZones.set(zone, { size, where });
        continue;
      }
      case 'upload_demo_page': {
        if (!topLevel) throw notAllowed(where, name);
        expectSimple(statement, where);
        if (args.length !== 1) throw argCountError(where, name);
        if (state.demoPage) throw configError(where, '"upload_demo_page" directive is duplicate');
        state.demoPage = where;
        state.draft.demoPage = atWhere(where, () => parseFlag(args[0].value, name));
        continue;
      }
      case 'upload_metrics': {
        // Makes the location the Prometheus exposition of this instance (like report_uploads for progress).
        if (!location) throw notAllowed(where, name, ' (only in a location)');
        expectSimple(statement, where);
        if (args.length !== 0) throw argCountError(where, name);
        once(name, where, name);
        location.metrics = where;
        continue;
      }
      case 'report_uploads': {
        if (!location) throw notAllowed(where, name, ' (only in a location)');
        expectSimple(statement, where);
        if (args.length !== 1) throw argCountError(where, name);
        once(name, where, name);
        location.reportUploads = { value: args[0].value, where };
        continue;
      }
      case 'upload_progress_template': {
        // Sets one state's template at this level; inherited state by state (§2).
        expectSimple(statement, where);
        if (args.length !== 2) throw argCountError(where, name);
        const template = atWhere(where, () => progressTemplateValue(args[0].value, args[1].value));
        scope.settings.progressTemplates = { ...scope.settings.progressTemplates, ...template } as typeof scope.settings.progressTemplates;
        if (!scope.written.has('progressTemplates')) scope.written.set('progressTemplates', where);
        continue;
      }
    }

    const output = PROGRESS_OUTPUTS.get(name);
    if (output) {
      // §2: installs all four templates and the content type; a later upload_progress_content_type
      // in the same block is a duplicate, an earlier one is overridden (as in the module).
      expectSimple(statement, where);
      if (args.length !== 0) throw argCountError(where, name);
      scope.settings.progressTemplates = { ...scope.settings.progressTemplates, ...outputTemplates(output) };
      scope.settings.progressContentType = OUTPUT_CONTENT_TYPES[output];
      given.add('progressContentType');
      if (!scope.written.has('progressTemplates')) scope.written.set('progressTemplates', where);
      if (!scope.written.has('progressContentType')) scope.written.set('progressContentType', where);
      continue;
    }

    const spec = SETTING_BY_DIRECTIVE.get(name);
    if (!spec) throw configError(where, `unknown directive "${name}"`);
    if (spec.serverOnly && location) throw notAllowed(where, name);
    expectSimple(statement, where);
    if (args.length < spec.minArgs || args.length > spec.maxArgs) throw argCountError(where, name);
    const key: SettingKey = spec.key;
    const value = atWhere(where, () => spec.fromArgs(args.map((arg) => arg.value), { baseDir: state.baseDir, directive: name }));
    if (spec.repeatable) {
      const list = (scope.settings[key] as unknown[] | undefined) ?? [];
      (scope.settings as Record<string, unknown>)[key] = [...list, ...(value as unknown[])];
    } else {
      // Both spellings of upload_empty_fiels_names share a key, so giving both is a duplicate too.
      once(key, where, name);
      (scope.settings as Record<string, unknown>)[key] = value;
    }
    if (!scope.written.has(key)) scope.written.set(key, where);
  }
}

/**
 * Parses a configuration file's text. `fileName` is used in messages and, unless
 * `options.baseDir` is given, its directory is where relative paths are resolved.
 * Throws `ConfigError` (`<file>:<line>: <reason>`) for any mistake.
 */
export function parseConfig(text: string, fileName: string, options: ParseOptions = {}): GatewayConfig {
  const baseDir = options.baseDir ?? path.dirname(path.resolve(fileName));
  const statements = parseStatements(text.replace(/^\uFEFF/, ''), fileName);
  const main = newScope(null);
  const state: ParseState = {
    file: fileName,
    baseDir,
    draft: { source: fileName, baseDir, listen: null, top: main, locations: [], sampleBackend: null, progressZones: new Map(), demoPage: null },
    http: null,
    server: null,
    listen: null,
    demoPage: null,
  };
  walkBlock(statements, 'main', main, state, null);
  return finalizeConfig(state.draft);
}

/** Reads and parses a configuration file; relative paths in it are resolved against its directory. */
export function loadConfigFile(file: string): GatewayConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, 0, `cannot read the configuration file: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

