// A cheap scan run before the YAML parser: nesting deeper than any config needs only serves to
// exhaust the parser's stack (3,000 nested `- ` crash it), so it is refused with the line where
// it goes too deep. Block nesting is measured by the indentation stack and compact `- - -`
// indicators, flow nesting by [ and { outside quotes and comments. Where the scan cannot tell
// YAML's meaning exactly it errs towards counting more, never less (an apostrophe inside a plain
// scalar, `it's`, does not start a quote: only a quote where a scalar can start does).

export interface NestingProblem {
  kind: 'block' | 'flow';
  /** 1-based, like the parser's positions. */
  line: number;
  col: number;
}

const SPACE = new Set([' ', '\t']);

/**
 * Whether position `i` of `line` is where a node can start: the line start (after indentation),
 * after a flow indicator inside a flow collection, after `: `, `- `, `? ` indicators, or after an
 * anchor or tag (`&a [`, `!!seq [`).
 */
function tokenStart(line: string, i: number, inFlow: boolean): boolean {
  let j = i - 1;
  while (j >= 0 && SPACE.has(line[j] ?? '')) j--;
  if (j < 0) return true;
  const c = line[j] ?? '';
  const spaced = j < i - 1;
  if (inFlow && (c === '[' || c === '{' || c === ',')) return true;
  if (inFlow && c === ':') return true;
  if ((c === ':' || c === '-' || c === '?') && spaced) return j === 0 || SPACE.has(line[j - 1] ?? '') || c === ':';
  if (!spaced) return false;
  // An anchor or tag before the node: the word ending at j starts with & or !.
  let w = j;
  while (w > 0 && !SPACE.has(line[w - 1] ?? '')) w--;
  return line[w] === '&' || line[w] === '!';
}

/** The first place where `text` nests deeper than `max`, or undefined. */
export function excessiveNesting(text: string, max: number): NestingProblem | undefined {
  const lines = text.split('\n');
  const stack: number[] = [];         // columns of the open block nodes
  let flow = 0;                       // open [ and {
  let quote: string | undefined;      // inside a quoted scalar (it may span lines)
  let scalarParent: number | undefined; // inside a block scalar (| or >) of a line with this indent
  for (let li = 0; li < lines.length; li++) {
    const line = (lines[li] ?? '').replace(/\r$/, '');
    let i = 0;
    if (quote === undefined && flow === 0) {
      let indent = 0;
      while (line[indent] === ' ') indent++;
      const blank = indent >= line.length || line[indent] === '#' || /^\s*$/.test(line);
      if (scalarParent !== undefined) {
        if (blank || indent > scalarParent) continue;
        scalarParent = undefined;
      }
      if (blank) continue;
      while (stack.length > 0 && (stack[stack.length - 1] ?? 0) >= indent) stack.pop();
      let c = indent;
      for (;;) {
        stack.push(c);
        if (stack.length > max) return { kind: 'block', line: li + 1, col: c + 1 };
        const ch = line[c];
        const next = line[c + 1];
        if (!((ch === '-' || ch === '?' || ch === ':') && (next === undefined || SPACE.has(next)))) break;
        c++;
        while (SPACE.has(line[c] ?? '')) c++;
        if (c >= line.length || line[c] === '#') break;
      }
      i = indent;
      const header = /(^|\s)[|>][0-9+-]*\s*(#.*)?$/.exec(line);
      if (header && tokenStart(line, header.index + header[1]!.length, false)) scalarParent = indent;
    }
    for (; i < line.length; i++) {
      const ch = line[i];
      if (quote !== undefined) {
        if (quote === '"' && ch === '\\') i++;
        else if (ch === quote) {
          if (quote === "'" && line[i + 1] === "'") i++;
          else quote = undefined;
        }
        continue;
      }
      if (ch === '#' && (i === 0 || SPACE.has(line[i - 1] ?? ''))) break;
      if ((ch === '"' || ch === "'") && tokenStart(line, i, flow > 0)) quote = ch;
      else if ((ch === '[' || ch === '{') && (flow > 0 || tokenStart(line, i, false))) {
        flow++;
        if (flow > max) return { kind: 'flow', line: li + 1, col: i + 1 };
      } else if ((ch === ']' || ch === '}') && flow > 0) flow--;
    }
  }
  return undefined;
}
