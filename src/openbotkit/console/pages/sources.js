// An answer's sources and token usage, from the bot message's meta (console and widget alike).
import { h } from '../ui.js'

export function sourcesPart (meta, datasetNames = {}) {
  const records = meta?.sourceRecords || (meta?.sources || []).map((id) => ({ id }))
  return h('details.sources', { open: records.length > 0 },
    h('summary', { text: `Sources (${records.length})` }),
    records.length
      ? h('ol', {}, records.map((r) => h('li', {},
        h('blockquote', { text: r.text ?? `record ${r.id}` }),
        h('div.muted', {},
          `dataset ${datasetNames[r.datasetId] || r.datasetId || '?'}`,
          r.score !== undefined ? ` · score ${Number(r.score).toFixed(3)}` : '',
          r.source ? ` · ${r.source}` : ''))))
      : h('p.muted', { text: 'No records were used for this answer.' }))
}

export function usageText (usage) {
  if (!usage) return ''
  const input = usage.inputTokensUsed ?? 0
  const output = usage.outputTokensUsed ?? 0
  return `${input + output} tokens (${input} in, ${output} out)`
}
