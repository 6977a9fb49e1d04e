// Hand-written SVG charts for the report: horizontal bars (median, with a min–max whisker over the
// runs) and line charts (RSS over time, latency distributions). No chart library.

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#9c755f'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

export interface Bar {
  label: string;
  median: number;
  min?: number;
  max?: number;
  /** Bars sharing a group share a colour. */
  group?: string;
}

export function barChart(title: string, unit: string, bars: Bar[], note?: string): string {
  const rowH = 26;
  const left = 230;
  const width = 760;
  const plotW = width - left - 90;
  const top = 40;
  const height = top + bars.length * rowH + (note ? 40 : 20);
  const maxV = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.max ?? NaN) ? (b.max as number) : b.median)).filter(Number.isFinite));
  const x = (v: number) => left + (Math.max(0, v) / maxV) * plotW;
  const groups = [...new Set(bars.map((b) => b.group ?? b.label))];
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    const color = COLORS[groups.indexOf(b.group ?? b.label) % COLORS.length];
    const parts = [
      `<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="12">${esc(b.label)}</text>`,
      Number.isFinite(b.median) ? `<rect x="${left}" y="${y + 5}" width="${Math.max(1, x(b.median) - left)}" height="16" fill="${color}"/>` : '',
    ];
    if (b.min !== undefined && b.max !== undefined && Number.isFinite(b.min) && Number.isFinite(b.max)) {
      parts.push(`<line x1="${x(b.min)}" x2="${x(b.max)}" y1="${y + 13}" y2="${y + 13}" stroke="#222" stroke-width="1.5"/>`);
      parts.push(`<line x1="${x(b.min)}" x2="${x(b.min)}" y1="${y + 8}" y2="${y + 18}" stroke="#222"/>`);
      parts.push(`<line x1="${x(b.max)}" x2="${x(b.max)}" y1="${y + 8}" y2="${y + 18}" stroke="#222"/>`);
    }
    const end = Math.max(x(b.median), b.max !== undefined && Number.isFinite(b.max) ? x(b.max) : 0);
    parts.push(`<text x="${end + 6}" y="${y + 17}" font-size="12">${Number.isFinite(b.median) ? num(b.median) : '—'}</text>`);
    return parts.join('');
  });
  return svg(width, height, [
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${width - 10}" y="22" text-anchor="end" font-size="11" fill="#555">${esc(unit)}; bar = median, whisker = min–max</text>`,
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + bars.length * rowH}" stroke="#999"/>`,
    ...rows,
    note ? `<text x="10" y="${height - 12}" font-size="11" fill="#555">${esc(note)}</text>` : '',
  ]);
}

export interface Series {
  name: string;
  points: [number, number][];
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], options: { yMin?: number; note?: string } = {}): string {
  const width = 760;
  const height = 380;
  const m = { left: 70, right: 170, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const xMax = Math.max(1e-9, ...all.map(([a]) => a));
  const xMin = Math.min(0, ...all.map(([a]) => a));
  const yMax = Math.max(1e-9, ...all.map(([, b]) => b)) * 1.05;
  const yMin = options.yMin ?? 0;
  const px = (v: number) => m.left + ((v - xMin) / (xMax - xMin || 1)) * (width - m.left - m.right);
  const py = (v: number) => height - m.bottom - ((v - yMin) / (yMax - yMin || 1)) * (height - m.top - m.bottom);
  const ticks = (lo: number, hi: number) => Array.from({ length: 5 }, (_, i) => lo + ((hi - lo) * i) / 4);
  const parts: string[] = [
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#999"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 12}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    `<text x="16" y="${(m.top + height - m.bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(m.top + height - m.bottom) / 2})">${esc(yLabel)}</text>`,
  ];
  for (const t of ticks(xMin, xMax)) parts.push(`<text x="${px(t)}" y="${height - m.bottom + 16}" text-anchor="middle" font-size="11">${num(t)}</text>`);
  for (const t of ticks(yMin, yMax)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="11">${num(t)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (pts.length) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(' ')}"/>`);
    parts.push(`<rect x="${width - m.right + 12}" y="${m.top + i * 20}" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${width - m.right + 30}" y="${m.top + i * 20 + 10}" font-size="11">${esc(s.name)}</text>`);
  });
  if (options.note) parts.push(`<text x="${m.left}" y="${m.top - 6}" font-size="11" fill="#555">${esc(options.note)}</text>`);
  return svg(width, height, parts);
}

/** Points of an empirical CDF: x = value, y = share of samples ≤ x (in %). */
export function cdfPoints(samples: readonly number[], maxPoints = 200): [number, number][] {
  const sorted = [...samples].filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return [];
  const step = Math.max(1, Math.floor(sorted.length / maxPoints));
  const pts: [number, number][] = [];
  for (let i = 0; i < sorted.length; i += step) pts.push([sorted[i] as number, (100 * (i + 1)) / sorted.length]);
  pts.push([sorted[sorted.length - 1] as number, 100]);
  return pts;
}

function svg(width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...body.filter(Boolean),
    '</svg>',
    '',
  ].join('\n');
}
