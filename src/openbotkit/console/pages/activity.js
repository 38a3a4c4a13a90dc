// An ability call as the conversation records it: a message of type `activity` whose
// `meta.activity` is {abilityId, name, arguments, status, durationMs, error, result}. Shown as one
// compact line (name, status, duration, error) with the arguments and result folded away.
import { h } from '../ui.js'

/** The activity of a message (or of a streamed event, which may carry the message or the
 * activity itself), or null when it holds none. */
export function activityOf (value) {
  if (!value || typeof value !== 'object') return null
  if (value.meta?.activity) return { id: value.id, text: value.text, ...value.meta.activity }
  if (value.activity) return { id: value.id, text: value.text, ...value.activity }
  if (value.name && value.status) return value
  return value.type === 'activity' ? { id: value.id, text: value.text } : null
}

function duration (ms) {
  if (ms === undefined || ms === null) return ''
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

function pretty (value) {
  if (value === undefined || value === null || value === '') return ''
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2)
}

/** One call line: `⚙ lookup_order · ok · 84 ms`, the error after it when the call failed. */
export function activityLine (activity) {
  const ok = activity.status === 'ok'
  const known = Boolean(activity.name || activity.status)
  const args = pretty(activity.arguments)
  const result = pretty(activity.result)
  const line = h('div.call', {},
    h('span.call-icon', { 'aria-hidden': 'true', text: '⚙' }),
    h('span.call-name.mono', { text: known ? activity.name || 'ability' : activity.text || 'ability call' }),
    known && activity.status ? h('span', { class: `call-status ${ok ? 'ok' : 'error'}`, text: activity.status }) : null,
    activity.durationMs !== undefined ? h('span.call-duration', { text: duration(activity.durationMs) }) : null,
    activity.error ? h('span.call-error', { text: activity.error }) : null)
  const details = args || result
    ? h('details.call-details', {}, h('summary', { text: 'Arguments and result' }),
      args ? h('pre.mono', { 'aria-label': 'Arguments', text: args }) : null,
      result ? h('pre.mono', { 'aria-label': 'Result', text: result }) : null)
    : null
  return h('article.msg.activity', { 'aria-label': 'Ability call', 'data-id': activity.id || '' }, line, details)
}
