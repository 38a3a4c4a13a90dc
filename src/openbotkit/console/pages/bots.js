// Bots: list, create, edit (name, backstory, model, dataset, skillset, meta), delete, embed
// snippet; each bot's integrations (where it answers) are listed with their state.
import { all, post } from '../api.js'
import { confirmAction, field, formAlert, h, jsonField, onSubmit, section, when } from '../ui.js'
import { widgetSnippet } from './embed.js'
import { allIntegrations, integrationName, statusText } from './integrations.js'

export default async function bots (main) {
  const [items, datasets, skillsets, integrations] = await Promise.all([all('/bot/list'), all('/dataset/list'), all('/skillset/list'), allIntegrations()])
  const datasetName = Object.fromEntries(datasets.map((d) => [d.id, d.name || d.id]))
  const skillsetName = Object.fromEntries(skillsets.map((s) => [s.id, s.name || s.id]))
  const editor = h('div')
  const embed = h('div')

  function edit (bot) {
    const name = h('input', { name: 'name', value: bot?.name || '', required: true })
    const description = h('input', { name: 'description', value: bot?.description || '' })
    const backstory = h('textarea', { name: 'backstory', rows: 4, value: bot?.backstory || '' })
    const model = h('input', { name: 'model', value: bot?.model || '', placeholder: 'smollm2' })
    const dataset = h('select', { name: 'datasetId' },
      h('option', { value: '', text: '(none)' }),
      ...datasets.map((d) => h('option', { value: d.id, text: d.name || d.id, selected: d.id === bot?.datasetId })))
    const skillset = h('select', { name: 'skillsetId' },
      h('option', { value: '', text: '(none)' }),
      ...skillsets.map((s) => h('option', { value: s.id, text: s.name || s.id, selected: s.id === bot?.skillsetId })))
    const meta = h('textarea', { name: 'meta', rows: 2, value: bot?.meta ? JSON.stringify(bot.meta) : '', placeholder: '{"team": "support"}' })
    const form = onSubmit(h('form.grid', {},
      field('Name', name),
      field('Description', description),
      field('Backstory', backstory, 'What the bot is and how it should answer.'),
      field('Model', model, 'Blank for the default model; e.g. smollm2/maxTokens=128/temperature=0.'),
      field('Dataset', dataset, 'The records the bot answers from.'),
      field('Skillset', skillset, 'The abilities the bot can use (Skillsets page).'),
      field('Meta', meta, 'A JSON object of your own labels.'),
      formAlert(),
      h('div.actions', {},
        h('button', { type: 'submit', text: bot ? 'Save bot' : 'Create bot' }),
        h('button', { type: 'button', text: 'Cancel', on: { click: () => { editor.replaceChildren(); newButton.hidden = false } } }))),
    async () => {
      const body = {
        name: name.value,
        description: description.value || (bot ? null : undefined),
        backstory: backstory.value || (bot ? null : undefined),
        model: model.value || (bot ? null : undefined),
        datasetId: dataset.value || (bot ? null : undefined),
        skillsetId: skillset.value || (bot ? null : undefined),
        meta: jsonField(meta.value, 'meta') ?? (bot ? null : undefined)
      }
      if (bot) await post(`/bot/${bot.id}/update`, body)
      else await post('/bot/create', body)
      await bots(main)
    })
    editor.replaceChildren(section(bot ? `Edit ${bot.name || bot.id}` : 'New bot', form))
    newButton.hidden = true
    name.focus()
  }

  const newButton = h('button', { type: 'button', text: 'New bot', on: { click: () => edit(null) } })
  const rows = items.map((bot) => h('tr', {},
    h('td', {}, h('strong', { text: bot.name || '(unnamed)' }), h('div.muted', { text: bot.description || '' })),
    h('td', { text: bot.model || 'default' }),
    h('td', { text: bot.datasetId ? datasetName[bot.datasetId] || bot.datasetId : '—' }),
    h('td', {}, bot.skillsetId ? h('a', { href: `#/skillsets/${bot.skillsetId}`, text: skillsetName[bot.skillsetId] || bot.skillsetId }) : '—'),
    h('td', {}, botIntegrations(integrations.filter((i) => i.botId === bot.id))),
    h('td.mono', { text: bot.id }),
    h('td', { text: when(bot.createdAt) }),
    h('td.row-actions', {},
      h('a.button', { href: `#/playground/${bot.id}`, text: 'Chat', 'aria-label': `Chat with ${bot.name || bot.id}` }),
      h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${bot.name || bot.id}`, on: { click: () => edit(bot) } }),
      h('button', { type: 'button', text: 'Embed', 'aria-label': `Embed ${bot.name || bot.id}`, on: { click: () => widgetSnippet(embed, bot) } }),
      h('button.danger', {
        type: 'button',
        text: 'Delete',
        'aria-label': `Delete ${bot.name || bot.id}`,
        on: {
          click: async () => {
            if (!await confirmAction(`Delete the bot "${bot.name || bot.id}"? Its conversations stay, the bot is gone.`)) return
            await post(`/bot/${bot.id}/delete`, {})
            await bots(main)
          }
        }
      }))))
  main.replaceChildren(
    h('div.page-head', {}, h('h1', { text: 'Bots' }), newButton),
    editor,
    embed,
    items.length
      ? h('table', { 'aria-label': 'Bots' },
        h('thead', {}, h('tr', {}, ...['Name', 'Model', 'Dataset', 'Skillset', 'Integrations', 'Id', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, rows))
      : h('p.empty', { text: 'No bots yet. Create one, give it a dataset, and chat with it in the Playground.' }))
}

/** Where a bot answers: its integrations, each with its kind and last error. */
function botIntegrations (list) {
  if (!list.length) return h('a.muted', { href: '#/integrations', text: 'none' })
  return h('ul.plain', {}, list.map((i) => h('li', {},
    h('a', { href: '#/integrations', text: `${i.kind}: ${integrationName(i)}` }),
    i.lastError ? h('div', { class: 'status error', text: statusText(i) }) : null)))
}
