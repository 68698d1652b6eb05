// A strict JSON reader for signed DR messages (RFC 8259 grammar), for what JSON.parse cannot say:
// JSON.parse keeps the last of two equal keys, so {"site_id":"a","site_id":"b"} means "b" here and
// "a" to a parser that keeps the first: a signed command must not mean two things. This reader
// reports every duplicate key (compared after unescaping), every number that is not written the
// canonical way (below), and refuses lone UTF-16 surrogates and deep nesting; the values it returns
// are those JSON.parse would give (objects without a prototype, so "__proto__" is a plain key).
//
// Canonical number: exactly the text ECMAScript's Number::toString (what JSON.stringify) writes for
// the double it denotes: no "+", no leading zeros, no trailing fractional zeros, no "-0", exponent
// form only below 1e-6 or from 1e21 ("1e-7", "1e+21"), and no digits beyond what the double holds
// (9007199254740993 is not canonical: it reads as ...992). Plain decimals with at most 15
// significant digits between 1e-6 and 1e21 (1.5, 15, 0.25) are canonical in every language.

type StrictIssueKind = 'duplicate_key' | 'non_canonical_number';

interface StrictIssue {
  kind: StrictIssueKind;
  /** JSON pointer-like path of the key or value, e.g. `command_id` or `a.b[2]`. */
  path: string;
  message: string;
}

export class StrictJsonError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'StrictJsonError';
    this.offset = offset;
  }
}

export interface StrictParse {
  value: unknown;
  issues: StrictIssue[];
}

const MAX_DEPTH = 16;

/** True when the token is the canonical text of its number (see the header). */
export function isCanonicalNumber(token: string): boolean {
  const n = Number(token);
  return Number.isFinite(n) && String(n) === token;
}

/** Parses `text` as one JSON value; throws StrictJsonError on a syntax error, returns issues otherwise. */
export function parseStrictJson(text: string): StrictParse {
  return new Reader(text).document();
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

class Reader {
  private i = 0;
  readonly issues: StrictIssue[] = [];
  constructor(private readonly s: string) {}

  document(): StrictParse {
    this.ws();
    const value = this.value('', 0);
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected text after the JSON value');
    return { value, issues: this.issues };
  }

  private fail(msg: string): never {
    throw new StrictJsonError(msg, this.i);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.i++;
    }
  }

  private value(path: string, depth: number): unknown {
    const c = this.s[this.i];
    if ((c === '{' || c === '[') && depth >= MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    switch (c) {
      case '{': return this.object(path, depth);
      case '[': return this.array(path, depth);
      case '"': return this.string();
      case 't': return this.literal('true', true);
      case 'f': return this.literal('false', false);
      case 'n': return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number(path);
        return this.fail(c === undefined ? 'unexpected end of text' : `unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length;
      return v;
    }
    return this.fail('invalid literal');
  }

  private object(path: string, depth: number): Record<string, unknown> {
    const out = Object.create(null) as Record<string, unknown>;
    const seen = new Set<string>();
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      if (this.s[this.i] !== '"') this.fail('expected a key string');
      const key = this.string();
      const keyPath = join(path, key);
      if (seen.has(key)) this.issues.push({ kind: 'duplicate_key', path: keyPath, message: `key ${JSON.stringify(key)} appears more than once${path === '' ? '' : ` in ${path}`}` });
      seen.add(key);
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.ws();
      const v = this.value(keyPath, depth + 1);
      // The first occurrence is kept; a document with duplicates is refused by the caller anyway.
      if (!Object.prototype.hasOwnProperty.call(out, key)) out[key] = v;
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.fail('expected "," or "}"');
      this.ws();
    }
  }

  private array(path: string, depth: number): unknown[] {
    const out: unknown[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(`${path}[${out.length}]`, depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
      this.ws();
    }
  }

  private number(path: string): number {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.i;
    const hit = m.exec(this.s);
    if (!hit) return this.fail('invalid number');
    const token = hit[0];
    this.i += token.length;
    const n = Number(token);
    if (!isCanonicalNumber(token)) {
      const canonical = Number.isFinite(n) ? String(n) : 'none (outside the range of a double)';
      this.issues.push({ kind: 'non_canonical_number', path, message: `number ${token}${path === '' ? '' : ` at ${path}`} is not written canonically (canonical: ${canonical})` });
    }
    return n;
  }

  private string(): string {
    const s = this.s;
    let out = '';
    let start = ++this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(start, this.i);
        this.i++;
        break;
      }
      if (c < 0x20) this.fail('control character in a string');
      if (c === 0x5c) {
        out += s.slice(start, this.i);
        out += this.escape();
        start = this.i;
        continue;
      }
      this.i++;
    }
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(out)) {
      this.fail('lone UTF-16 surrogate in a string (not Unicode text)');
    }
    return out;
  }

  private escape(): string {
    const e = this.s[this.i + 1];
    this.i += 2;
    switch (e) {
      case '"': return '"';
      case '\\': return '\\';
      case '/': return '/';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'u': {
        const hex = this.s.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
        this.i += 4;
        return String.fromCharCode(parseInt(hex, 16));
      }
      default: return this.fail('invalid escape');
    }
  }
}
