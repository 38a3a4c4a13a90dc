// Keys: create (the secret is shown once), list, revoke.
import { get, post } from '../api.js'
import { confirmAction, field, formAlert, h, num, onSubmit, section, when } from '../ui.js'

export default async function keys (main) {
  const { items } = await get('/token/list')
  const name = h('input', { name: 'name', placeholder: 'e.g. build server' })
  const scope = h('select', { name: 'scope' },
    h('option', { value: 'destructive', text: 'Everything (read, write, delete)' }),
    h('option', { value: 'write', text: 'Read and write (no deletes)' }),
    h('option', { value: 'read', text: 'Read only' }))
  const budget = h('input', { name: 'budgetTokens', type: 'number', min: 1, step: 1, placeholder: 'no limit' })
  const days = h('input', { name: 'expiresIn', type: 'number', min: 1, step: 1, placeholder: 'never' })
  const form = onSubmit(h('form.grid', {}, field('Key name', name), field('Scope', scope), field('Token budget', budget),
    field('Expires in (days)', days), formAlert(), h('div.actions', {}, h('button', { type: 'submit', text: 'Create key' }))), async () => {
    const key = await post('/token/create', {
      name: name.value || undefined,
      scope: scope.value,
      budgetTokens: num(budget.value),
      expiresIn: num(days.value) === undefined ? undefined : Math.round(num(days.value) * 86400)
    })
    await keys(main)
    main.querySelector('.created').replaceChildren(h('div.notice', { role: 'status' },
      h('p', { text: 'Your new key (shown only now; keep it somewhere safe):' }),
      h('input.mono', { readOnly: true, value: key.token, 'aria-label': 'Your new key', size: 60 }),
      h('button', { type: 'button', text: 'Copy', on: { click: () => navigator.clipboard?.writeText(key.token) } })))
  })
  const current = sessionStorage.getItem('obk.secret') || ''
  main.replaceChildren(
    h('h1', { text: 'Keys' }),
    section('New key', h('p.hint', { text: 'A key reaches every bot and dataset of this account, within its scope. For a web page, use a bot\'s Embed button: its key can only talk to that bot.' }), form, h('div.created')),
    h('table', { 'aria-label': 'Keys' },
      h('thead', {}, h('tr', {}, ...['Name', 'Starts with', 'Scope', 'Created', 'Status', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}, items.map((k) => h('tr', {},
        h('td', { text: k.name || '(unnamed)' }),
        h('td.mono', { text: `${k.prefix}…` }),
        h('td', { text: scopeText(k) }),
        h('td', { text: when(k.createdAt) }),
        h('td', { text: status(k, current) }),
        h('td.row-actions', {}, k.revokedAt
          ? null
          : h('button.danger', {
            type: 'button',
            text: 'Revoke',
            'aria-label': `Revoke ${k.name || k.prefix}`,
            on: {
              click: async () => {
                if (!await confirmAction(`Revoke the key "${k.name || k.prefix}"? Anything using it stops working.`, 'Revoke')) return
                await post(`/token/${k.id}/revoke`, {})
                await keys(main)
              }
            }
          })))))))
}

function scopeText (k) {
  const parts = []
  if (k.scope && k.scope !== 'destructive') parts.push(`scope ${k.scope}`)
  if (k.bots?.length) parts.push(`bots ${k.bots.join(', ')}`)
  if (k.datasets?.length) parts.push(`datasets ${k.datasets.join(', ')}`)
  if (k.budgetTokens) parts.push(`${(k.tokensUsed || 0).toLocaleString()} / ${k.budgetTokens.toLocaleString()} tokens`)
  if (k.expiresAt) parts.push(`expires ${when(k.expiresAt)}`)
  return parts.join(' · ') || 'everything'
}

function status (k, current) {
  if (k.revokedAt) return `revoked ${when(k.revokedAt)}`
  if (k.expiresAt && k.expiresAt <= Date.now()) return `expired ${when(k.expiresAt)}`
  return current.startsWith(k.prefix) ? 'active (this session)' : 'active'
}
