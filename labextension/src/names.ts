/**
 * Short names for long keys, so a narrow sidebar shows `C` rather than forty rows that
 * all read `model.logistic__…`. The full key stays on hover (the caller's title).
 */

/** The suffixes of `key` that start right after a '.' (a variable's param) or a '__'
 * (scikit-learn's nesting of a pipeline step's params), shortest first, then the key. */
export function suffixes(key: string): string[] {
  const found: string[] = [];
  const separator = /\.|__/g;
  let match: RegExpExecArray | null;
  while ((match = separator.exec(key)) !== null) {
    const rest = key.slice(match.index + match[0].length);
    if (rest) {
      found.unshift(rest);
    }
  }
  return found.concat(key);
}

function endsWithPart(key: string, part: string): boolean {
  if (key === part) {
    return true;
  }
  if (!key.endsWith(part)) {
    return false;
  }
  const before = key.slice(0, key.length - part.length);
  return before.endsWith('.') || before.endsWith('__');
}

/**
 * For each key, its shortest suffix (cut at a separator) that no other key ends with:
 * `model.logistic__C` → `C`, but `logistic__C` beside `svc__C`. Two keys never get the
 * same short name.
 */
export function shortNames(keys: string[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const key of keys) {
    const unique = suffixes(key).find(part =>
      keys.every(other => other === key || !endsWithPart(other, part))
    );
    names.set(key, unique ?? key);
  }
  return names;
}

/** `model.logistic__C` → `model`: the variable an estimator's params were read from. */
export function owner(key: string): string {
  const dot = key.indexOf('.');
  return dot < 0 ? '' : key.slice(0, dot);
}

/**
 * `key` as text with a line break allowed after each '_', '.', '/' and '-' (a <wbr>), so a
 * long name wraps between its words rather than at any letter. Its textContent is `key`.
 */
export function breakable(key: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  key.split(/(?<=[_./-])/).forEach((part, i) => {
    if (i > 0) {
      fragment.appendChild(document.createElement('wbr'));
    }
    fragment.appendChild(document.createTextNode(part));
  });
  return fragment;
}
