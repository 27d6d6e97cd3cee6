/** The key reference of docs/configuration.md, written from the schema (a test keeps the page equal to it). */
import { envName } from './env.js';
import { flagTable } from './flags.js';
import { SCHEMA } from './schema.js';
import { defaultText, expected, type Setting } from './setting.js';

interface Row {
  key: string;
  setting: Setting;
  env: string | undefined;
}

function rows(setting: Setting, key: string, envPath: string[] | undefined): Row[] {
  if (setting.kind === 'obj') {
    return Object.entries(setting.fields).flatMap(([name, field]) => rows(field, key === '' ? name : `${key}.${name}`, envPath === undefined ? undefined : [...envPath, name]));
  }
  const own: Row = { key, setting, env: envPath === undefined ? undefined : envName(envPath) };
  // Lists of objects (listeners, bridges, topics): the list, then each key of one item.
  if (setting.kind === 'list' && setting.of.kind === 'obj') return [own, ...rows(setting.of, `${key}[]`, undefined)];
  return [own];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** Markdown: the flags table, then one table per top-level section with every key, its type, default and variable. */
export function configurationReference(): string {
  const fields: Readonly<Record<string, Setting>> = SCHEMA.fields;
  const flags = new Map(flagTable().map((f) => [f.key, f.flag]));
  const out: string[] = ['| flag | key |', '|---|---|', ...flagTable().map((f) => `| \`${f.flag}\` | \`${f.key}\` |`), ''];
  const sections = new Map<string, Row[]>();
  for (const row of rows(SCHEMA, '', [])) {
    const top = row.key.split(/[.[]/)[0] ?? row.key;
    const field = fields[top];
    const section = field?.kind === 'obj' || (field?.kind === 'list' && field.of.kind === 'obj') ? top : 'general';
    sections.set(section, [...(sections.get(section) ?? []), row]);
  }
  for (const [section, list] of sections) {
    const doc = section === 'general' ? 'the process, the plain listener and the store' : (fields[section]?.doc ?? '');
    out.push(`### ${section === 'general' ? 'General' : `\`${section}\``}`, '', `${doc[0]?.toUpperCase() ?? ''}${doc.slice(1)}.`, '');
    out.push('| key | type | default | meaning |', '|---|---|---|---|');
    for (const row of list) {
      const fallback = defaultText(row.setting) ?? (row.setting.required === true ? '**required**' : 'unset');
      const also = [flags.has(row.key) ? `\`${flags.get(row.key) ?? ''}\`` : '', row.env === undefined ? '' : `\`${row.env}\``].filter((x) => x !== '').join(', ');
      out.push(`| \`${row.key}\` | ${cell(expected(row.setting))} | ${cell(fallback)} | ${cell(row.setting.doc)}${also === '' ? '' : ` (${also})`} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
