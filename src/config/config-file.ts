/**
 * Reads a configuration file: Starling's JSON with comments and trailing commas (jsonc-parser), or
 * a Mosquitto configuration, told apart by name (*.conf) and content. Messages carry line numbers.
 */
import { readFileSync } from 'node:fs';
import { findNodeAtLocation, parse, parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { ConfigError } from './config-error.js';
import { objectLayer, type Layer } from './layer.js';
import { translateMosquitto } from './mosquitto.js';
import type { Path } from './setting.js';

/** A configuration file as a layer, with the warnings its reading produced (untranslated Mosquitto options). */
export interface ConfigFile {
  layer: Layer;
  warnings: string[];
  /** 'starling' or 'mosquitto'. */
  format: 'starling' | 'mosquitto';
}

/** Reads `path`; `format` 'auto' detects a Mosquitto file by its name or its first meaningful line. */
export function readConfigFile(path: string, format: 'auto' | 'mosquitto' = 'auto'): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  if (format === 'mosquitto' || (format === 'auto' && looksLikeMosquitto(path, text))) {
    const translated = translateMosquitto(text, path);
    return { layer: objectLayer(`${path} (translated from Mosquitto)`, translated.config), warnings: translated.warnings, format: 'mosquitto' };
  }
  return { layer: jsoncLayer(path, text), warnings: [], format: 'starling' };
}

/** A *.conf file, or one whose first line that is not blank or a comment does not open a JSON object. */
function looksLikeMosquitto(path: string, text: string): boolean {
  if (path.endsWith('.conf')) return true;
  if (path.endsWith('.json') || path.endsWith('.jsonc') || path.endsWith('.json5')) return false;
  const first = text.split('\n').find((line) => {
    const trimmed = line.trim();
    return trimmed !== '' && !trimmed.startsWith('#') && !trimmed.startsWith('//') && !trimmed.startsWith('/*');
  });
  return first !== undefined && !first.trim().startsWith('{');
}

/** Parses Starling's JSON with comments; syntax errors are refused with their line and column. */
export function jsoncLayer(source: string, text: string): Layer {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    throw new ConfigError(errors.map((e) => `${source}:${lineOf(text, e.offset)}:${columnOf(text, e.offset)}: not valid JSON: ${describeParseError(printParseErrorCode(e.error))}`));
  }
  const tree = parseTree(text, [], { allowTrailingComma: true });
  const line = (path: Path): number | undefined => {
    if (tree === undefined) return undefined;
    for (let n = path.length; n >= 0; n--) {
      const node = findNodeAtLocation(tree, [...path.slice(0, n)]);
      // The key of an object member is the node's parent's first child: its line is the one to show.
      if (node !== undefined) return lineOf(text, node.parent?.type === 'property' ? node.parent.offset : node.offset);
    }
    return undefined;
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: the configuration must be an object ({ … }); got ${Array.isArray(value) ? 'an array' : String(value)}`);
  }
  return objectLayer(source, value as Record<string, unknown>, line);
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function columnOf(text: string, offset: number): number {
  return offset - text.lastIndexOf('\n', offset - 1);
}

function describeParseError(code: string): string {
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}
