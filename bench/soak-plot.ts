/**
 * The soak's figures: least-squares trends of its samples, and a small SVG plot of them (drawn here,
 * no plotting library and no network): one panel per series group, time on the x axis.
 */

/** One sample row of the soak CSV. */
export type Sample = Record<string, number>;

/** Slope (per hour) and mean of `key` over `rows`, by least squares on the `t_s` column. */
export function trend(rows: readonly Sample[], key: string): { slopePerHour: number; mean: number; first: number; last: number } {
  const xs = rows.map((r) => r['t_s'] ?? 0);
  const ys = rows.map((r) => r[key] ?? 0);
  const n = xs.length;
  if (n < 2) return { slopePerHour: 0, mean: ys[0] ?? 0, first: ys[0] ?? 0, last: ys[0] ?? 0 };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return { slopePerHour: sxx === 0 ? 0 : (sxy / sxx) * 3600, mean: my, first: ys[0]!, last: ys[n - 1]! };
}

/** A panel: its title and the series (column, label, colour) drawn in it. */
export interface Panel {
  title: string;
  unit: string;
  series: { key: string; label: string; colour: string }[];
}

const WIDTH = 900;
const PANEL_HEIGHT = 180;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 24 };

/** An SVG with one panel per entry of `panels`, sharing the time axis (minutes). */
export function plot(rows: readonly Sample[], panels: readonly Panel[], title: string): string {
  const height = panels.length * PANEL_HEIGHT + 40;
  const tMax = Math.max(1, ...rows.map((r) => r['t_s'] ?? 0));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ];
  panels.forEach((panel, p) => {
    const top = 30 + p * PANEL_HEIGHT;
    const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
    const y0 = top + MARGIN.top;
    const values = rows.flatMap((r) => panel.series.map((s) => r[s.key] ?? 0));
    const yMax = niceMax(Math.max(0, ...values));
    const x = (t: number): number => MARGIN.left + (t / tMax) * plotW;
    const y = (v: number): number => y0 + plotH - (v / yMax) * plotH;
    parts.push(`<text x="${MARGIN.left}" y="${top + 16}" font-size="12" font-weight="bold">${escape(panel.title)} (${escape(panel.unit)})</text>`);
    parts.push(`<rect x="${MARGIN.left}" y="${y0}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
      parts.push(`<text x="${MARGIN.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${format(v)}</text>`);
    }
    const minutes = tMax / 60;
    const step = minutes > 40 ? 10 : minutes > 12 ? 5 : 1;
    for (let m = 0; m <= minutes; m += step) {
      parts.push(`<text x="${x(m * 60).toFixed(1)}" y="${y0 + plotH + 14}" text-anchor="middle">${m} min</text>`);
    }
    panel.series.forEach((s, i) => {
      const points = rows.map((r) => `${x(r['t_s'] ?? 0).toFixed(1)},${y(r[s.key] ?? 0).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${points}"/>`);
      // The legend: one line under the panel's title, 200 px per series.
      const lx = MARGIN.left + i * 200;
      parts.push(`<rect x="${lx}" y="${top + 25}" width="10" height="3" fill="${s.colour}"/>`);
      parts.push(`<text x="${lx + 14}" y="${top + 30}">${escape(s.label)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** 1, 2 or 5 times a power of ten, at least `v`. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * power >= v) return m * power;
  return 10 * power;
}

function format(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
