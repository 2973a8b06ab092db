import { ValueError } from '../../src/config/errors';
import {
  AGGREGATE_ONLY_VARIABLES,
  checkTemplateVariables,
  compileTemplate,
  isAggregateOnlyVariable,
  isKnownVariable,
  KNOWN_VARIABLES,
  parseTemplate,
  renderTemplate,
  templateUses,
  UPLOAD_VARIABLES,
} from '../../src/protocol/templates';

describe('parseTemplate', () => {
  test('literal text only', () => {
    expect(parseTemplate('name')).toEqual({ source: 'name', parts: [{ literal: 'name' }] });
    expect(parseTemplate('')).toEqual({ source: '', parts: [] });
  });

  test('$name and ${name}, with text around', () => {
    expect(parseTemplate('$upload_field_name.path').parts).toEqual([
      { variable: 'upload_field_name' },
      { literal: '.path' },
    ]);
    expect(parseTemplate('${upload_field_name}_name').parts).toEqual([
      { variable: 'upload_field_name' },
      { literal: '_name' },
    ]);
    expect(parseTemplate('a-$b$c-${d}e').parts).toEqual([
      { literal: 'a-' },
      { variable: 'b' },
      { variable: 'c' },
      { literal: '-' },
      { variable: 'd' },
      { literal: 'e' },
    ]);
  });

  test('a name is [A-Za-z0-9_]+: it stops at the first other character', () => {
    expect(parseTemplate('$arg_X9-y').parts).toEqual([{ variable: 'arg_X9' }, { literal: '-y' }]);
    expect(parseTemplate('$a.b').parts).toEqual([{ variable: 'a' }, { literal: '.b' }]);
  });

  test('keeps the source as written', () => {
    expect(parseTemplate('x ${a} y').source).toBe('x ${a} y');
  });

  test.each([
    ['$', /invalid variable name/],
    ['abc$', /invalid variable name/],
    ['$-x', /invalid variable name/],
    ['${}', /invalid variable name/],
    ['${abc', /closing bracket in "abc" variable is missing/],
    ['${a-b}', /closing bracket/],
  ])('refuses %j', (source, message) => {
    expect(() => parseTemplate(source)).toThrow(ValueError);
    expect(() => parseTemplate(source)).toThrow(message);
  });
});

describe('known variables', () => {
  test('upload variables of spec §9 are known', () => {
    for (const name of [
      'upload_field_name',
      'upload_file_name',
      'upload_content_type',
      'upload_tmp_path',
      'upload_file_number',
      'upload_content_range',
      'upload_file_md5',
      'upload_file_md5_uc',
      'upload_file_sha1',
      'upload_file_sha1_uc',
      'upload_file_sha256',
      'upload_file_sha256_uc',
      'upload_file_sha512',
      'upload_file_sha512_uc',
      'upload_file_crc32',
      'upload_file_size',
    ]) {
      expect(isKnownVariable(name)).toBe(true);
      expect(KNOWN_VARIABLES.has(name)).toBe(true);
    }
  });

  test('nginx request variables are known, prefix variables need a name', () => {
    for (const name of [
      'remote_addr',
      'request_uri',
      'uri',
      'args',
      'query_string',
      'host',
      'request_method',
      'content_length',
      'content_type',
      'scheme',
      'server_port',
      'arg_id',
      'http_x_request_id',
      'cookie_session',
    ]) {
      expect(isKnownVariable(name)).toBe(true);
    }
    for (const name of ['arg_', 'http_', 'cookie_', 'foo', 'upload_file', 'upload_file_sha384', 'request', '1']) {
      expect(isKnownVariable(name)).toBe(false);
    }
  });

  test('exactly the hash, crc and size variables are aggregate-only', () => {
    expect([...AGGREGATE_ONLY_VARIABLES].sort()).toEqual(
      [
        'upload_file_crc32',
        'upload_file_md5',
        'upload_file_md5_uc',
        'upload_file_sha1',
        'upload_file_sha1_uc',
        'upload_file_sha256',
        'upload_file_sha256_uc',
        'upload_file_sha512',
        'upload_file_sha512_uc',
        'upload_file_size',
      ].sort(),
    );
    for (const name of UPLOAD_VARIABLES) expect(isAggregateOnlyVariable(name)).toBe(false);
  });
});

describe('checkTemplateVariables', () => {
  test('unknown variable', () => {
    expect(() => checkTemplateVariables(parseTemplate('a$nope'), 'upload_set_form_field')).toThrow('unknown "nope" variable');
    expect(() => compileTemplate('${x_y}', 'upload_aggregate_form_field')).toThrow('unknown "x_y" variable');
  });

  test.each(AGGREGATE_ONLY_VARIABLES)('$%s is allowed in aggregate fields only', (name) => {
    expect(() => compileTemplate(`$${name}`, 'upload_aggregate_form_field')).not.toThrow();
    expect(() => compileTemplate(`x$${name}`, 'upload_set_form_field')).toThrow(/aggregate/);
    expect(() => compileTemplate(`\${${name}}`, 'upload_add_header')).toThrow(/aggregate/);
  });

  test.each(UPLOAD_VARIABLES)('$%s is allowed everywhere', (name) => {
    for (const context of ['upload_set_form_field', 'upload_aggregate_form_field', 'upload_add_header'] as const) {
      expect(() => compileTemplate(`$${name}`, context)).not.toThrow();
    }
  });

  test('request variables are allowed everywhere', () => {
    expect(() => compileTemplate('$arg_id-$http_x_tag-$remote_addr', 'upload_add_header')).not.toThrow();
  });
});

describe('renderTemplate', () => {
  test('substitutes variables; unknown values are empty', () => {
    const template = parseTemplate('${upload_field_name}.path=$upload_tmp_path;$arg_x!');
    const values: Record<string, string> = { upload_field_name: 'file1', upload_tmp_path: '/s/1/0000000001' };
    expect(renderTemplate(template, (name) => values[name])).toBe('file1.path=/s/1/0000000001;!');
  });

  test('a variable value is never re-interpreted', () => {
    expect(renderTemplate(parseTemplate('$a'), () => '$b ${c}')).toBe('$b ${c}');
  });

  test('an empty template renders empty', () => {
    expect(renderTemplate(parseTemplate(''), () => 'x')).toBe('');
  });
});

describe('templateUses', () => {
  const template = parseTemplate('${upload_file_md5}-$upload_file_name');

  test('with a set of names', () => {
    expect(templateUses(template, new Set(['upload_file_md5', 'other']))).toBe(true);
    expect(templateUses(template, new Set(['upload_file_sha1']))).toBe(false);
    expect(templateUses(parseTemplate('upload_file_md5'), new Set(['upload_file_md5']))).toBe(false);
  });

  test('with a predicate', () => {
    expect(templateUses(template, (name) => name.startsWith('upload_file_md'))).toBe(true);
    expect(templateUses(template, (name) => name.includes('sha'))).toBe(false);
  });
});
