/**
 * DOM building without HTML parsing: every string from the server becomes a text node
 * (textContent), never markup. Nothing in this extension parses HTML.
 */
import { NonFinite } from './api';

export type Child = Node | string | number | null | undefined | false;

export interface IAttrs {
  class?: string;
  title?: string;
  [name: string]: string | number | boolean | undefined | ((event: Event) => void);
}

/** An element with attributes and children; strings are added as text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: IAttrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    if (typeof value === 'function') {
      element.addEventListener(name.replace(/^on/, ''), value);
    } else if (/^on/i.test(name)) {
      throw new Error(`Refusing to set the handler attribute ${name} from text`);
    } else if (name === 'class') {
      element.className = String(value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(
      child instanceof Node ? child : document.createTextNode(String(child))
    );
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    element.setAttribute(name, String(value));
  }
  return element;
}

// -- formatting --------------------------------------------------------------------

const NONFINITE_TEXT: Record<NonFinite, string> = {
  nan: 'NaN',
  inf: '∞',
  '-inf': '−∞'
};

/** A metric for display: 4 significant digits, NaN and infinities by name. */
export function formatMetric(
  value: number | null | undefined,
  nonfinite?: NonFinite
): string {
  if (nonfinite) {
    return NONFINITE_TEXT[nonfinite];
  }
  if (value === null || value === undefined) {
    return '–';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e9) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

/** A param value as the user wrote it: strings bare, anything else as JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A start time: the time of day when it is today, else the date and time. */
export function formatTime(epochSeconds: number | null | undefined): string {
  if (epochSeconds === null || epochSeconds === undefined) {
    return '';
  }
  const date = new Date(epochSeconds * 1000);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === now.toDateString()) {
    return time;
  }
  const day = date.toLocaleDateString([], {
    month: 'short',
    day: 'numeric',
    year: date.getFullYear() === now.getFullYear() ? undefined : 'numeric'
  });
  return `${day} ${time}`;
}

/** A moment in full (weekday, date, time with seconds), for a hover. */
export function formatDateTime(epochSeconds: number | null | undefined): string {
  if (epochSeconds === null || epochSeconds === undefined) {
    return '';
  }
  return new Date(epochSeconds * 1000).toLocaleString([], {
    weekday: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

export function formatBytes(size: number): string {
  if (size < 1024) {
    return `${size} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** The first line of a cell that says something (not blank, not a comment). */
export function firstLine(source: string | null | undefined): string {
  const lines = (source ?? '').split('\n').map(line => line.trim());
  return lines.find(line => line && !line.startsWith('#')) ?? lines[0] ?? '';
}

/** A small line chart of a metric's history; non-finite steps leave a gap. */
export function sparkline(
  points: { step: number; value: number | null }[],
  width = 140,
  height = 32
): SVGElement {
  const chart = svg('svg', {
    class: 'jp-mlops-sparkline',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img'
  });
  const finite = points.filter(p => p.value !== null) as {
    step: number;
    value: number;
  }[];
  if (finite.length < 2) {
    return chart;
  }
  const steps = finite.map(p => p.step);
  const values = finite.map(p => p.value);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const pad = 3;
  const x = (step: number) => pad + ((step - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const y = (value: number) =>
    height - pad - ((value - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  let segment: string[] = [];
  const flush = () => {
    if (segment.length > 1) {
      chart.appendChild(svg('polyline', { points: segment.join(' ') }));
    }
    segment = [];
  };
  for (const point of points) {
    if (point.value === null) {
      flush();
    } else {
      segment.push(`${x(point.step).toFixed(1)},${y(point.value).toFixed(1)}`);
    }
  }
  flush();
  const last = finite[finite.length - 1];
  chart.appendChild(
    svg('circle', { cx: x(last.step).toFixed(1), cy: y(last.value).toFixed(1), r: 2 })
  );
  const title = svg('title', {});
  title.textContent = `${finite.length} steps, min ${formatMetric(y0)}, max ${formatMetric(y1)}`;
  chart.appendChild(title);
  return chart;
}

/** A message in place of content: empty lists, errors. */
export function notice(text: string, kind: 'empty' | 'error' = 'empty'): HTMLElement {
  return h('div', { class: `jp-mlops-notice jp-mlops-notice-${kind}` }, text);
}

export function statusBadge(status: string): HTMLElement {
  return h(
    'span',
    { class: 'jp-mlops-status', 'data-status': status, title: status },
    status.toLowerCase()
  );
}

/**
 * Save a Blob as a file, through a temporary object URL. The URL is typed as opaque bytes
 * whatever the blob holds: opened in a tab it downloads, it never renders (an SVG or HTML
 * artifact would run its script in JupyterLab's origin).
 */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(
    new Blob([blob], { type: 'application/octet-stream' })
  );
  const link = h('a', { href: url, download: filename });
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}
