/**
 * Programmatic configuration: a plain object with camelCase names mirroring the directives. It is
 * checked with zod for its shape, then every value goes through the same parsers, checks, defaults
 * and inheritance as the configuration file (the setting table and `finalizeConfig`).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { atWhere, configError, ConfigError, type Where } from './errors';
import { finalizeConfig, newScope, type ConfigDraft, type LocationDraft, type ScopeDraft } from './finalize';
import { SETTINGS } from './settings';
import type { GatewayConfig } from './types';
import { parseListen } from './values';
import { parseSize } from './units';
import { MIN_PROGRESS_ZONE } from './parse';
import { OUTPUT_CONTENT_TYPES, outputTemplates, type ProgressOutput } from '../protocol/upload-progress';
import type { GatewayConfigInput } from './input';

const SOURCE = '<object>';

const progressOutput = z.enum(['json', 'jsonp', 'java'], { error: 'expected "json", "jsonp" or "java"' }).optional();
const shapeOf = (specs: typeof SETTINGS) => ({
  ...Object.fromEntries(specs.map((spec) => [spec.inputKey, spec.input.optional()])),
  progressOutput,
});
const topShape = shapeOf(SETTINGS);
const settingsShape = shapeOf(SETTINGS.filter((spec) => !spec.serverOnly));
const progressShape = shapeOf(SETTINGS.filter((spec) => spec.progressLocation || spec.key === 'stateRedis'));
const { progressOutput: _output, ...metricsShape } = shapeOf(SETTINGS.filter((spec) => spec.metricsLocation));

const metricsLocationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  ...metricsShape,
});

const progressLocationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  reportUploads: z.string({ error: 'expected the zone name' }),
  ...progressShape,
});

const locationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  uploadPass: z.string({ error: 'expected an absolute http:// or https:// URL' }),
  ...settingsShape,
});

const configSchema = z.strictObject({
  listen: z
    .union([z.string(), z.number(), z.strictObject({ host: z.string(), port: z.number() })], {
      error: 'expected "host:port", a port number, or { host, port }',
    })
    .optional(),
  locations: z.array(locationSchema, { error: 'expected an array of locations' }).optional(),
  sampleBackend: z.union([z.null(), z.strictObject({ filesDir: z.string() })]).optional(),
  progressZones: z.record(z.string(), z.union([z.number(), z.string()]), { error: 'expected { NAME: SIZE }' }).optional(),
  progressLocations: z.array(progressLocationSchema, { error: 'expected an array of progress locations' }).optional(),
  metricsLocations: z.array(metricsLocationSchema, { error: 'expected an array of metrics locations' }).optional(),
  demoPage: z.boolean({ error: 'expected true or false' }).optional(),
  ...topShape,
});

function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of parts) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  }
  return out;
}

function settingsFromInput(input: Record<string, unknown>, keyPrefix: string, scope: ScopeDraft, baseDir: string): void {
  for (const spec of SETTINGS) {
    const raw = input[spec.inputKey];
    if (raw === undefined) continue;
    const where: Where = { file: SOURCE, line: 0, key: `${keyPrefix}${spec.inputKey}` };
    (scope.settings as Record<string, unknown>)[spec.key] = atWhere(where, () => spec.fromInput(raw, { baseDir }));
    scope.written.set(spec.key, where);
  }
  const output = input.progressOutput as ProgressOutput | undefined;
  if (output !== undefined) {
    // As the output directive written first: the object's own templates and content type win.
    const where: Where = { file: SOURCE, line: 0, key: `${keyPrefix}progressOutput` };
    scope.settings.progressTemplates = { ...outputTemplates(output), ...scope.settings.progressTemplates };
    scope.settings.progressContentType ??= OUTPUT_CONTENT_TYPES[output];
    if (!scope.written.has('progressTemplates')) scope.written.set('progressTemplates', where);
    if (!scope.written.has('progressContentType')) scope.written.set('progressContentType', where);
  }
}

function listenFromInput(listen: NonNullable<GatewayConfigInput['listen']>): { host: string; port: number } {
  const text =
    typeof listen === 'object'
      ? `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`
      : String(listen);
  return atWhere({ file: SOURCE, line: 0, key: 'listen' }, () => parseListen(text));
}

/**
 * Builds a `GatewayConfig` from a plain object, with the defaults and checks of the configuration
 * file; relative paths are resolved against `baseDir`. Throws `ConfigError` (`<object>: key: reason`).
 */
export function resolveConfig(input: GatewayConfigInput, baseDir: string = process.cwd()): GatewayConfig {
  const checked = configSchema.safeParse(input);
  if (!checked.success) {
    const reasons = checked.error.issues.map((issue) => {
      const key = formatPath(issue.path);
      return key ? `${key}: ${issue.message}` : issue.message;
    });
    throw new ConfigError(SOURCE, 0, reasons.join('; '));
  }
  const value = checked.data as GatewayConfigInput & Record<string, unknown>;
  const root = path.resolve(baseDir);

  const top = newScope(null);
  settingsFromInput(value, '', top, root);

  const locations = (value.locations ?? []).map((location, index): LocationDraft => {
    const key = `locations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const passWhere: Where = { ...where, key: `${key}.uploadPass` };
    if (!/^https?:\/\//i.test(location.uploadPass)) {
      throw configError(passWhere, `must be an absolute http:// or https:// URL (got "${location.uploadPass}")`);
    }
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    return {
      match: location.match ?? 'prefix',
      path: location.path,
      where,
      scope,
      uploadPass: { value: location.uploadPass, where: passWhere },
      proxyPass: null,
      internal: null,
      reportUploads: null,
    };
  });
  (value.progressLocations ?? []).forEach((location, index) => {
    const key = `progressLocations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    locations.push({
      match: location.match ?? 'prefix',
      path: location.path,
      where,
      scope,
      uploadPass: null,
      proxyPass: null,
      internal: null,
      reportUploads: { value: location.reportUploads, where: { ...where, key: `${key}.reportUploads` } },
    });
  });
  (value.metricsLocations ?? []).forEach((location, index) => {
    const key = `metricsLocations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    locations.push({ match: location.match ?? 'prefix', path: location.path, where, scope, uploadPass: null, proxyPass: null, internal: null, reportUploads: null, metrics: where });
  });
  const progressZones = new Map<string, { size: number; where: Where }>();
  for (const [name, size] of Object.entries(value.progressZones ?? {})) {
    const where: Where = { file: SOURCE, line: 0, key: `progressZones.${name}` };
    const bytes = atWhere(where, () => (typeof size === 'number' ? size : parseSize(size)));
    if (!Number.isSafeInteger(bytes) || bytes < MIN_PROGRESS_ZONE) throw configError(where, `upload_progress "${name}" is too small (${size}): at least 32k`);
    progressZones.set(name, { size: bytes, where });
  }

  const draft: ConfigDraft = {
    source: SOURCE,
    baseDir: root,
    listen: value.listen === undefined ? null : listenFromInput(value.listen),
    top,
    locations,
    sampleBackend: value.sampleBackend ? { filesDir: path.resolve(root, value.sampleBackend.filesDir) } : null,
    progressZones,
    demoPage: value.demoPage ?? null,
  };
  return finalizeConfig(draft);
}
