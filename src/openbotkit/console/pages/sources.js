// An answer's sources and token usage, from the bot message's meta (console and widget alike).
import { h } from '../ui.js'

/** `file:///ID` as the file's name when it is known. */
export function sourceLabel (source, fileNames = {}) {
  if (!source) return ''
  const id = source.startsWith('file:///') ? source.slice(8) : null
  return id && fileNames[id] ? fileNames[id] : source
}

export function sourcesPart (meta, datasetNames = {}, fileNames = {}) {
  const records = meta?.sourceRecords || (meta?.sources || []).map((id) => ({ id }))
  return h('details.sources', { open: records.length > 0 },
    h('summary', { text: `Sources (${records.length})` }),
    records.length
      ? h('ol', {}, records.map((r) => h('li', {},
        h('blockquote', { text: r.text ?? `record ${r.id}` }),
        h('div.muted', {},
          `dataset ${datasetNames[r.datasetId] || r.datasetId || '?'}`,
          r.score !== undefined ? ` · score ${Number(r.score).toFixed(3)}` : '',
          r.source ? ` · ${sourceLabel(r.source, fileNames)}` : ''))))
      : h('p.muted', { text: 'No records were used for this answer.' }))
}

export function usageText (usage) {
  if (!usage) return ''
  const input = usage.inputTokensUsed ?? 0
  const output = usage.outputTokensUsed ?? 0
  return `${input + output} tokens (${input} in, ${output} out)`
}

/** The answer's text, with the spans its citations cover marked and numbered by source (when
 * the server aligned the answer with its records: meta.citations). */
export function answerText (el, text, meta) {
  const citations = Array.isArray(meta?.citations) ? [...meta.citations].sort((a, b) => a.start - b.start) : []
  if (!citations.length) { el.textContent = text; return }
  const order = (meta.sourceRecords || meta.sources || []).map((r) => (typeof r === 'string' ? r : r.id))
  const parts = []
  let at = 0
  for (const c of citations) {
    if (c.start < at || c.end > text.length || c.end <= c.start) continue
    parts.push(text.slice(at, c.start))
    const n = order.indexOf(c.recordId) + 1
    parts.push(h('mark.cited', { title: `“${c.quote}”` }, text.slice(c.start, c.end), n ? h('sup', { text: `[${n}]` }) : null))
    at = c.end
  }
  parts.push(text.slice(at))
  el.replaceChildren(...parts)
}

export function groundingText (meta) {
  return typeof meta?.grounding === 'number' ? ` · ${Math.round(meta.grounding * 100)}% of the answer supported by its sources` : ''
}
