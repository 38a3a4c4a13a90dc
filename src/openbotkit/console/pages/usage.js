// Usage: tokens, conversations and messages per day as a chart drawn in SVG, and what the
// account stores now.
import { get } from '../api.js'
import { h, section } from '../ui.js'

const SVG = 'http://www.w3.org/2000/svg'
const SERIES = [['tokens', 'Tokens', '#2f5bd3'], ['conversations', 'Conversations', '#1d8a5b'], ['messages', 'Messages', '#c2410c']]

function s (tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v)
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}

const day = (ms) => new Date(ms).toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' })

/** One small chart per metric (they differ by orders of magnitude), sharing the time axis. */
function chart (points, label, color) {
  const W = 1000; const H = 170; const L = 48; const B = 24; const T = 10; const R = 10
  const max = Math.max(1, ...points.map((p) => p.total))
  const step = (W - L - R) / points.length
  const y = (v) => T + (H - T - B) * (1 - v / max)
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${label} per day` },
    s('title', {}, `${label} per day, last ${points.length} days: ${points.reduce((a, p) => a + p.total, 0)} in all`),
    s('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), class: 'axis' }),
    s('text', { x: L - 6, y: y(max) + 4, 'text-anchor': 'end', class: 'tick' }, max.toLocaleString()),
    s('text', { x: L - 6, y: y(0) + 4, 'text-anchor': 'end', class: 'tick' }, '0'))
  points.forEach((p, i) => {
    const x = L + i * step
    const bar = s('rect', { x: x + step * 0.15, y: y(p.total), width: Math.max(1, step * 0.7), height: y(0) - y(p.total), fill: color },
      s('title', {}, `${day(p.date)}: ${p.total.toLocaleString()} ${label.toLowerCase()}`))
    svg.append(bar)
    if (i % Math.ceil(points.length / 6) === 0 || i === points.length - 1) {
      svg.append(s('text', { x: x + step / 2, y: H - 6, 'text-anchor': 'middle', class: 'tick' }, day(p.date)))
    }
  })
  const sum = points.reduce((a, p) => a + p.total, 0)
  return h('figure.chart', {}, h('figcaption', {}, label, h('span.muted', { text: ` · ${sum.toLocaleString()} in ${points.length} days` })), svg)
}

export default async function usage (main) {
  const days = 30
  const [totals, series] = await Promise.all([get('/usage/fetch'), get('/usage/series/fetch', { days })])
  const card = (label, value) => h('div.stat', {}, h('div.value', { text: Number(value).toLocaleString() }), h('div.label', { text: label }))
  main.replaceChildren(
    h('h1', { text: 'Usage' }),
    section('This month', h('div.stats', {}, card('tokens', totals.tokens), card('conversations', totals.conversations), card('messages', totals.messages))),
    section(`Last ${days} days`, h('div.charts', { role: 'group', 'aria-label': 'Usage chart' }, SERIES.map(([k, label, color]) => chart(series[k], label, color)))),
    section('Stored now', h('div.stats', {}, Object.entries(totals.database).map(([k, v]) => card(k, v)))))
}
