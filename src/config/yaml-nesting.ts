// A cheap scan run before the YAML parser: nesting deeper than any config needs only serves to
// exhaust the parser's stack (3,000 nested `- ` crash it), so it is refused with the line where
// it goes too deep. Block nesting is measured by the indentation stack and compact `- - -`
// indicators, flow nesting by [ and { outside quotes and comments. Where the scan cannot tell
// YAML's meaning exactly it errs towards counting more, never less (an apostrophe inside a plain
// scalar, `it's`, does not start a quote: only a quote where a scalar can start does).

interface NestingProblem {
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

/** A block scalar header from its indicator to the end of the line: `|`/`>`, indentation and chomping indicators, a comment. */
const BLOCK_SCALAR_HEADER = /^[|>](?:([1-9])[+-]?|[+-]([1-9])?)?[ \t]*(?:#.*)?$/;

interface BlockScalar {
  /** Indentation of the node holding the scalar: content is indented more. */
  parent: number;
  /** Indentation of the content: from the indentation indicator, else the first non-empty line. */
  content: number | undefined;
}

/**
 * The block scalar whose header is at `col` of `line`, with `stack` the columns of the line's open
 * block nodes. Its parent is the innermost node that is not the scalar itself: the key's column in
 * `- a: |`, the inner entry's in `- - |` (not the line's indentation: the scan would take a less
 * indented sibling key for content and miss the nesting under it).
 */
function blockScalar(stack: readonly number[], line: string, col: number, digit: string | undefined): BlockScalar {
  let top = stack.length - 1;
  const last = stack[top] ?? -1;
  // The last node opened on this line is the scalar itself when only anchors and tags come before the header.
  if (last >= 0 && /^(?:[&!]\S*[ \t]+)*$/.test(line.slice(last, col))) top--;
  const parent = stack[top] ?? -1;
  return { parent, content: digit === undefined ? undefined : Math.max(parent, 0) + Number(digit) };
}

/** The first place where `text` nests deeper than `max`, or undefined. */
export function excessiveNesting(text: string, max: number): NestingProblem | undefined {
  const lines = text.split('\n');
  const stack: number[] = [];         // columns of the open block nodes
  let flow = 0;                       // open [ and {
  let quote: string | undefined;      // inside a quoted scalar (it may span lines)
  let scalar: BlockScalar | undefined; // inside a block scalar (| or >)
  for (let li = 0; li < lines.length; li++) {
    const line = (lines[li] ?? '').replace(/\r$/, '');
    let i = 0;
    if (quote === undefined && flow === 0) {
      let indent = 0;
      while (line[indent] === ' ') indent++;
      const blank = indent >= line.length || line[indent] === '#' || /^\s*$/.test(line);
      if (scalar !== undefined) {
        // The parser's rule: the content is indented more than the parent node, by the indentation
        // indicator or as much as its first non-empty line; a less indented line (a comment too) ends it.
        if (/^\s*$/.test(line)) continue;
        if (scalar.content === undefined && indent > scalar.parent) scalar.content = indent;
        if (scalar.content !== undefined && indent >= scalar.content) continue;
        scalar = undefined;
      }
      if (blank) continue;
      while (stack.length > 0 && (stack[stack.length - 1] ?? 0) >= indent) stack.pop();
      let c = indent;
      while (SPACE.has(line[c] ?? '')) c++;   // a tab after the indentation: the parser reads on past it
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
    }
    let flowDashes = 0;                 // `- ` inside a flow collection: not YAML, but the parser nests them
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
      if ((ch === '|' || ch === '>') && flow === 0 && tokenStart(line, i, false)) {
        const header = BLOCK_SCALAR_HEADER.exec(line.slice(i));
        if (header) {
          scalar = blockScalar(stack, line, i, header[1] ?? header[2]);
          break;
        }
      }
      if ((ch === '"' || ch === "'") && tokenStart(line, i, flow > 0)) quote = ch;
      else if ((ch === '[' || ch === '{') && (flow > 0 || tokenStart(line, i, false))) {
        flow++;
        if (flow > max) return { kind: 'flow', line: li + 1, col: i + 1 };
      } else if ((ch === ']' || ch === '}') && flow > 0) flow--;
      else if (ch === '-' && flow > 0 && (i + 1 >= line.length || SPACE.has(line[i + 1] ?? '')) && tokenStart(line, i, true)) {
        flowDashes++;
        if (flow + flowDashes > max) return { kind: 'flow', line: li + 1, col: i + 1 };
      }
    }
  }
  return undefined;
}
