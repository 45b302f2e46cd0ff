/**
 * `${NAME}` and `${NAME:-default}` in a config: replaced by environment variables in values
 * only, never in keys and never in the YAML text, so a variable can never inject structure —
 * its value stays one scalar whatever it holds (`{a: 1}`, `x\nfoo: bar`, `*alias`). `$${`
 * escapes a literal `${`.
 *
 * Two things make that usable:
 *  - YAML forbids `{` and `}` in a plain scalar inside a flow collection, so
 *    `http: { token: ${TOKEN} }` would not parse. Before parsing, the braces of each reference
 *    are swapped for two private-use characters that appear nowhere in the text (one UTF-16
 *    unit each, so error positions stay right), and swapped back in every parsed string; only
 *    then are values substituted, as if the reference had been quoted.
 *  - A variable's value is text. Where the schema refuses that text and it reads as a YAML 1.2
 *    number or boolean (`8`, `1.5`, `true`), the number or boolean is used instead
 *    (`workers: ${W}`); where the schema takes text (`token: ${T}` of digits), it stays text.
 */
import { raError } from '../errors.js';

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
/** A reference as it may be written in YAML text: on one line. */
const ENV_REF_IN_TEXT = /\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^}\n]*)?)\}/g;

/** A value that had references substituted: where, and the text it became. */
export interface Substitution {
  readonly path: readonly PropertyKey[];
  readonly text: string;
  /** The variables referenced, for error messages. */
  readonly names: readonly string[];
}

/** YAML text whose references parse as plain text anywhere, and the undoing of that in a parsed string. */
export function markReferences(text: string, source: string): { text: string; unmark: (s: string) => string } {
  const [open, close] = unusedPrivateChars(text, source);
  const marked = text.replace(ENV_REF_IN_TEXT, (_m, inner: string) => `$${open}${inner}${close}`);
  return { text: marked, unmark: (s) => s.replaceAll(open, '{').replaceAll(close, '}') };
}

/** Applies `unmark` to every string of a parsed value, keys included. */
export function unmarkStrings(value: unknown, unmark: (s: string) => string): unknown {
  if (typeof value === 'string') return unmark(value);
  if (Array.isArray(value)) return value.map((v) => unmarkStrings(v, unmark));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [unmark(k), unmarkStrings(v, unmark)]));
  }
  return value;
}

/**
 * Replaces references in every string value (one pass: a variable's value holding `${…}` is not
 * expanded again). A variable that is unset or empty takes its default; without one, an error
 * naming the key. Returns the substituted value and where substitutions happened.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, source: string, formatPath: (p: readonly PropertyKey[]) => string): { value: unknown; substitutions: Substitution[] } {
  const substitutions: Substitution[] = [];
  const walk = (v: unknown, at: PropertyKey[]): unknown => {
    if (typeof v === 'string') {
      const names: string[] = [];
      const text = v
        .split('$${')
        .map((part) =>
          part.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
            names.push(name);
            const got = env[name];
            if (got !== undefined && got !== '') return got;
            if (fallback !== undefined) return fallback;
            throw raError('RA_ERR_CONFIG', `${source}: invalid config:\n  ${formatPath(at)}: environment variable ${name} is not set (write \${${name}:-default} for a default)`, { details: { path: formatPath(at), variable: name } });
          }),
        )
        .join('${');
      if (names.length > 0) substitutions.push({ path: at, text, names });
      return text;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...at, i]));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...at, k])]));
    return v;
  };
  return { value: walk(value, []), substitutions };
}

/** The number or boolean a substituted text reads as (YAML 1.2 core schema, decimal), if any. */
export function scalarOf(text: string): number | boolean | undefined {
  if (/^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/.test(text)) {
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
  }
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  return undefined;
}

/** A copy of `value` with the value at `path` replaced. */
export function withValueAt(value: unknown, path: readonly PropertyKey[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? withValueAt(v, rest, replacement) : v));
  const obj = value as Record<PropertyKey, unknown>;
  return { ...obj, [head as PropertyKey]: withValueAt(obj[head as PropertyKey], rest, replacement) };
}

export function samePath(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

/** Two private-use characters (U+E000…) that neither appear in `text` nor are written there as escapes. */
function unusedPrivateChars(text: string, source: string): [string, string] {
  const found: string[] = [];
  for (let cp = 0xe000; cp <= 0xf8ff && found.length < 2; cp++) {
    const ch = String.fromCharCode(cp);
    const hex = cp.toString(16);
    if (!text.includes(ch) && !new RegExp(`\\\\(?:u|U0000)${hex}`, 'i').test(text)) found.push(ch);
  }
  if (found.length < 2) throw raError('RA_ERR_CONFIG', `${source}: not a usable config: it uses every private-use character (U+E000 to U+F8FF), two of which are needed to read its \${…} references`);
  return [found[0]!, found[1]!];
}
