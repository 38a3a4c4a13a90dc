// Integrations: bots answering on Telegram, Slack, Discord, WhatsApp and email. List every kind,
// create and edit (each kind's fields come from its action's schema; tokens are write-only),
// run setup and show what it still needs, see the last error, delete.
import { all, post } from '../api.js'
import { bodySchema, labelOf, schemaFields } from '../schema.js'
import { confirmAction, field, formAlert, h, onSubmit, section, when } from '../ui.js'

export const KINDS = [['telegram', 'Telegram'], ['slack', 'Slack'], ['discord', 'Discord'], ['whatsapp', 'WhatsApp'], ['email', 'Email']]
const LABEL = Object.fromEntries(KINDS)
// Fields the page does not offer: set through the API where they are needed.
const OMIT = ['alias', 'blueprintId', 'integrationId']

/** Every integration of the account, each with its `kind`, newest first. */
export async function allIntegrations () {
  const lists = await Promise.all(KINDS.map(([kind]) => all(`/integration/${kind}/list`)
    .then((items) => items.map((item) => ({ ...item, kind })))))
  return lists.flat().sort((a, b) => (b.createdAt || 0) - (a.createdAt || 0))
}

/** What an integration's state is, in words: its last error when it has one. */
export function statusText (item) {
  return item.lastError ? `Last error ${when(item.lastErrorAt)}: ${item.lastError}` : 'No errors reported'
}

export function integrationName (item) {
  return item.name || `${LABEL[item.kind] || item.kind} ${item.id}`
}

export default async function integrations (main) {
  const [items, bots] = await Promise.all([allIntegrations(), all('/bot/list')])
  const botName = Object.fromEntries(bots.map((b) => [b.id, b.name || b.id]))
  const editor = h('div')

  function botPicker (selected) {
    return h('select', { name: 'botId' },
      h('option', { value: '', text: '(none)' }),
      bots.map((b) => h('option', { value: b.id, text: b.name || b.id, selected: b.id === selected })))
  }

  async function edit (item) {
    const kind = h('select', { name: 'kind', disabled: Boolean(item) },
      KINDS.map(([value, label]) => h('option', { value, text: label, selected: value === item?.kind })))
    const slot = h('div.grid-fields')
    const alert = formAlert()
    let form = null
    let read = null
    async function draw () {
      const path = item ? `/integration/${item.kind}/{integrationId}/update` : `/integration/${kind.value}/create`
      const schema = await bodySchema(path)
      const drawn = schemaFields(schema, item, {
        omit: OMIT,
        controls: { botId: botPicker(item?.botId) },
        labels: { botId: 'Bot' },
        hints: { botId: 'The bot that answers.' }
      })
      read = drawn.read
      slot.replaceChildren(...drawn.fields)
      form.querySelector('[name=name]')?.focus()
    }
    form = onSubmit(h('form.grid', {},
      field('Kind', kind),
      slot,
      alert,
      h('div.actions', {},
        h('button', { type: 'submit', text: item ? 'Save integration' : 'Create integration' }),
        h('button', { type: 'button', text: 'Cancel', on: { click: () => { editor.replaceChildren(); newButton.hidden = false } } }))),
    async () => {
      if (item) {
        await post(`/integration/${item.kind}/${item.id}/update`, read())
        await integrations(main)
      } else {
        const made = await post(`/integration/${kind.value}/create`, read())
        await integrations(main)
        await runSetup(main, { id: made.id, kind: kind.value, name: form.querySelector('[name=name]')?.value })
      }
    })
    kind.addEventListener('change', draw)
    editor.replaceChildren(section(item ? `Edit ${integrationName(item)}` : 'New integration', form))
    newButton.hidden = true
    await draw()
  }

  const newButton = h('button', { type: 'button', text: 'New integration', on: { click: () => edit(null) } })
  const rows = items.map((item) => {
    const name = integrationName(item)
    return h('tr', {},
      h('td', { text: LABEL[item.kind] || item.kind }),
      h('td', {}, h('strong', { text: name }), h('div.muted', { text: item.description || '' })),
      h('td', { text: item.botId ? botName[item.botId] || item.botId : '—' }),
      h('td', {}, h('span', { class: item.lastError ? 'status error' : 'status', text: statusText(item) })),
      h('td.mono', { text: item.id }),
      h('td', { text: when(item.createdAt) }),
      h('td.row-actions', {},
        h('button', { type: 'button', text: 'Set up', 'aria-label': `Set up ${name}`, on: { click: () => runSetup(main, item) } }),
        h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${name}`, on: { click: () => edit(item) } }),
        h('button.danger', {
          type: 'button',
          text: 'Delete',
          'aria-label': `Delete ${name}`,
          on: {
            click: async () => {
              if (!await confirmAction(`Delete the integration "${name}"? The bot stops answering there; its conversations stay.`)) return
              await post(`/integration/${item.kind}/${item.id}/delete`, {})
              await integrations(main)
            }
          }
        })))
  })
  main.replaceChildren(
    h('div.page-head', {}, h('h1', { text: 'Integrations' }), newButton),
    editor,
    items.length
      ? h('table', { 'aria-label': 'Integrations' },
        h('thead', {}, h('tr', {}, ...['Kind', 'Name', 'Bot', 'Status', 'Id', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, rows))
      : h('p.empty', { text: 'No integrations yet. Create one to let a bot answer on Telegram, Slack, Discord, WhatsApp or email.' }))
}

/** Run an integration's setup and show what it says: ready or not, what is missing, the next
 * step, and Slack's Events URL. The list is redrawn first (setup may record a last error). */
async function runSetup (main, item) {
  const out = await post(`/integration/${item.kind}/${item.id}/setup`, {})
  await integrations(main)
  const facts = [
    ['Ready', out.ready ? 'yes' : 'no'],
    ['Runs here', out.runtime ? 'yes' : 'not in this version'],
    // The missing fields by the labels the form gives them (`botToken`: "Bot token").
    ['Missing', out.missing?.length ? out.missing.map(labelOf).join(', ') : 'nothing'],
    ['Events URL', out.eventsUrl],
    ['Workspace', out.teamId],
    ['Bot user', out.botUserId],
    ['Error', out.error]
  ].filter(([, v]) => v !== undefined && v !== null)
  const card = section(`Setup of ${LABEL[item.kind] || item.kind} ${item.name || out.id}`,
    h('p', { role: 'status', class: out.error ? 'status error' : out.ready ? 'saved' : 'status', text: out.message }),
    h('dl.facts', {}, facts.map(([k, v]) => [h('dt', { text: k }), h('dd', { class: k === 'Events URL' ? 'mono' : '', text: v })])))
  main.querySelector('.page-head').after(card)
}
