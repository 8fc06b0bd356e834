import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const chartHeight = 180;

// Chart draws time series with uPlot at a fixed height (the page does not
// move when data arrives) and the container's width.
// series: [{label, color, values}] sharing the x values xs (unix seconds).
export function Chart({ title, xs, series, unit }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: chartHeight,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ stroke: '#444' }, { stroke: '#444', size: 50, values: (u, vals) => vals.map((v) => `${+v.toFixed(2)}${unit || ''}`) }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
    };
    plot.current = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
    const ro = new ResizeObserver(() => {
      if (plot.current) plot.current.setSize({ width: Math.max(200, el.clientWidth), height: chartHeight });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    if (plot.current) plot.current.setData([xs, ...series.map((s) => s.values)]);
  }, [xs, series]);

  return <div class="chart" ref={box} role="img" aria-label={title} />;
}
