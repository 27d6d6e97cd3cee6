/** A small live line chart in SVG: a fixed number of points, y scaled to the largest value. */

const SVG = 'http://www.w3.org/2000/svg';

/** One line of a chart. */
export interface Series {
  label: string;
  /** CSS class giving the line its colour. */
  className: string;
  values: number[];
}

/** A chart that redraws when given new values. */
export class LineChart {
  readonly element: SVGSVGElement;
  /** A line under the chart: the latest values and the peak the scale goes to. */
  readonly caption: HTMLElement;
  private readonly width = 300;
  private readonly height = 100;

  constructor(
    private readonly series: Series[],
    private readonly points: number,
    private readonly format: (n: number) => string,
  ) {
    this.element = document.createElementNS(SVG, 'svg');
    this.element.setAttribute('viewBox', `0 0 ${this.width} ${this.height}`);
    this.element.setAttribute('preserveAspectRatio', 'none');
    this.element.setAttribute('class', 'chart');
    this.element.setAttribute('role', 'img');
    this.caption = document.createElement('div');
    this.caption.className = 'caption';
  }

  /** Adds one value to each series (in order) and redraws. */
  push(...values: number[]): void {
    this.series.forEach((s, i) => {
      s.values.push(values[i] ?? 0);
      if (s.values.length > this.points) s.values.shift();
    });
    this.draw();
  }

  private draw(): void {
    const max = Math.max(1, ...this.series.flatMap((s) => s.values));
    const step = this.width / (this.points - 1);
    const children: SVGElement[] = [];
    for (const fraction of [0.5, 1]) {
      const y = this.height - fraction * this.height * 0.9;
      const grid = document.createElementNS(SVG, 'line');
      grid.setAttribute('x1', '0');
      grid.setAttribute('x2', String(this.width));
      grid.setAttribute('y1', String(y));
      grid.setAttribute('y2', String(y));
      grid.setAttribute('class', 'grid');
      children.push(grid);
    }
    for (const s of this.series) {
      const offset = this.points - s.values.length;
      const coords = s.values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(this.height - (v / max) * this.height * 0.9).toFixed(1)}`);
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', coords.join(' '));
      line.setAttribute('class', `line ${s.className}`);
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      children.push(line);
    }
    this.element.replaceChildren(...children);
    const last = this.series.map((s) => `${s.label} ${this.format(s.values.at(-1) ?? 0)}`).join(' · ');
    const text = `${last} · top of scale ${this.format(max)}`;
    this.element.setAttribute('aria-label', text);
    this.caption.textContent = text;
  }
}
