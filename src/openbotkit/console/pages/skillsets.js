// Skillsets: what bots can do. A skillset holds abilities (each an instruction with one action
// block, started from a template or written by hand; a malformed one is refused with its line
// named next to the editor), and the account's secrets give abilities their credentials
// (values go in, never come back).
import { all, get, post } from '../api.js'
import { confirmAction, field, formAlert, h, onSubmit, section, when } from '../ui.js'

const SECRET_TYPES = [
  ['bearer', 'Bearer token (Authorization: Bearer …)'],
  ['basic', 'Basic (user:password)'],
  ['plain', 'Plain (the value as is)'],
  ['template', 'Template (the value as is)']
]

/**
 * Instructions to start from, each accepted by the server as written once its ${SECRET_DEFAULT}
 * has a linked secret (docs/abilities.md). `datasets` fills the dataset search template, which
 * must name a dataset of the account.
 */
export function templates (datasets) {
  const list = [{
    id: 'fetch',
    label: 'JSON API (fetch with a bearer secret)',
    name: 'Look up an order',
    description: 'Looks up an order in the shop\'s API by its number.',
    secret: true,
    instruction: [
      'Look up an order by its number; answer from the JSON it returns.',
      '',
      '```fetch',
      'method: GET',
      'url: https://api.example.com/orders/$[orderId! euc|the order number]',
      'headers:',
      '  Authorization: ${SECRET_DEFAULT}',
      '  Accept: application/json',
      '```'
    ].join('\n')
  }]
  for (const d of datasets.slice(0, 20)) {
    list.push({
      id: `search:${d.id}`,
      label: `Dataset search (${d.name || d.id})`,
      name: `Search ${d.name || d.id}`,
      description: `Searches the ${d.name || d.id} dataset for passages that answer a question.`,
      secret: false,
      instruction: [
        `Search the ${d.name || d.id} dataset.`,
        '',
        `\`\`\`dataset/search/id=${d.id}`,
        'query: $[query! ys|what to search for]',
        '```'
      ].join('\n')
    })
  }
  list.push({
    id: 'mcp',
    label: 'MCP server (mcp/install)',
    name: 'Remote tools',
    description: 'The tools of a remote MCP server.',
    secret: true,
    instruction: [
      'Use the tools of this MCP server.',
      '',
      '```mcp/install',
      'url: https://mcp.example.com/mcp',
      'headers:',
      '  Authorization: ${SECRET_DEFAULT}',
      '```'
    ].join('\n')
  })
  return list
}

/** Put the caret on the line an `instruction line N: ...` error names, and select it. */
function selectLine (textarea, message) {
  const found = /^instruction line (\d+):/.exec(message || '')
  if (!found) return
  const lines = textarea.value.split('\n')
  const index = Math.min(Number(found[1]), lines.length) - 1
  const start = lines.slice(0, index).reduce((n, line) => n + line.length + 1, 0)
  textarea.focus()
  textarea.setSelectionRange(start, start + lines[index].length)
}

/** The action block's name (`fetch`, `dataset/search`...), or "text only". */
function actionOf (instruction) {
  const found = /^\s*```([^`\s]+)/m.exec(instruction || '')
  return found ? found[1].replace(/\/id=.*/, '') : 'text only'
}

export default async function skillsets (main, [skillsetId]) {
  if (skillsetId) return skillset(main, skillsetId)
  const [items, secrets] = await Promise.all([all('/skillset/list'), all('/secret/list')])
  const name = h('input', { name: 'name', required: true, placeholder: 'e.g. Orders' })
  const description = h('input', { name: 'description' })
  const form = onSubmit(h('form.grid', {}, field('Name', name), field('Description', description), formAlert(),
    h('div.actions', {}, h('button', { type: 'submit', text: 'Create skillset' }))), async () => {
    const made = await post('/skillset/create', { name: name.value, description: description.value || undefined })
    location.hash = `#/skillsets/${made.id}`
  })
  main.replaceChildren(
    h('h1', { text: 'Skillsets' }),
    section('New skillset', h('p.hint', { text: 'A skillset is a set of abilities: things a bot can do, such as calling an API or searching another dataset. Give it to a bot on the Bots page.' }), form),
    items.length
      ? h('table', { 'aria-label': 'Skillsets' },
        h('thead', {}, h('tr', {}, ...['Name', 'State', 'Id', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, items.map((s) => h('tr', {},
          h('td', {}, h('a', { href: `#/skillsets/${s.id}`, text: s.name || s.id }), h('div.muted', { text: s.description || '' })),
          h('td', { text: s.state || 'enabled' }),
          h('td.mono', { text: s.id }),
          h('td', { text: when(s.createdAt) }),
          h('td.row-actions', {}, h('button.danger', {
            type: 'button',
            text: 'Delete',
            'aria-label': `Delete ${s.name || s.id}`,
            on: {
              click: async () => {
                if (!await confirmAction(`Delete the skillset "${s.name || s.id}" and its abilities? Bots using it keep working without them.`)) return
                await post(`/skillset/${s.id}/delete`, {})
                await skillsets(main, [])
              }
            }
          }))))))
      : h('p.empty', { text: 'No skillsets yet.' }),
    secretsSection(main, secrets))
}

/** The account's secrets: create (the value is write-only), list, delete. */
function secretsSection (main, secrets) {
  const name = h('input', { name: 'name', required: true, placeholder: 'e.g. Shop API' })
  const alias = h('input', { name: 'alias', placeholder: 'shop-api' })
  const type = h('select', { name: 'type' }, SECRET_TYPES.map(([value, label]) => h('option', { value, text: label })))
  const value = h('input', { name: 'value', type: 'password', autocomplete: 'new-password', required: true })
  const form = onSubmit(h('form.grid', {},
    field('Secret name', name),
    field('Alias', alias, 'Optional: ${SECRET_<ALIAS>} in an instruction stands for it.'),
    field('Type', type, 'How ${SECRET_DEFAULT} writes the value.'),
    field('Value', value, 'Stored encrypted; never shown again.'),
    formAlert(),
    h('div.actions', {}, h('button', { type: 'submit', text: 'Create secret' }))), async () => {
    await post('/secret/create', { name: name.value, alias: alias.value || undefined, type: type.value, value: value.value })
    value.value = ''
    await skillsets(main, [])
  })
  return section('Secrets',
    h('p.hint', { text: 'Credentials abilities use (API tokens, passwords). Not API keys: those are on the Keys page.' }),
    form,
    secrets.length
      ? h('table', { 'aria-label': 'Secrets' },
        h('thead', {}, h('tr', {}, ...['Name', 'Type', 'Alias', 'Id', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, secrets.map((s) => h('tr', {},
          h('td', { text: s.name || '(unnamed)' }),
          h('td', { text: s.type }),
          h('td.mono', { text: s.alias || '' }),
          h('td.mono', { text: s.id }),
          h('td', { text: when(s.createdAt) }),
          h('td.row-actions', {}, h('button.danger', {
            type: 'button',
            text: 'Delete',
            'aria-label': `Delete secret ${s.name || s.id}`,
            on: {
              click: async () => {
                if (!await confirmAction(`Delete the secret "${s.name || s.id}"?`)) return
                try { await post(`/secret/${s.id}/delete`, {}) } catch (err) { window.alert(err.message); return }
                await skillsets(main, [])
              }
            }
          }))))))
      : h('p.muted', { text: 'No secrets yet.' }))
}

/** One skillset: its name and state, and its abilities. */
async function skillset (main, id) {
  const [set, abilities, secrets, bots, datasets] = await Promise.all([
    get(`/skillset/${id}/fetch`), all(`/skillset/${id}/ability/list`), all('/secret/list'), all('/bot/list'), all('/dataset/list')])
  const secretName = Object.fromEntries(secrets.map((s) => [s.id, s.name || s.id]))
  const editor = h('div')

  const name = h('input', { name: 'name', value: set.name || '' })
  const description = h('input', { name: 'description', value: set.description || '' })
  const state = h('select', { name: 'state' }, ['enabled', 'disabled'].map((v) => h('option', { value: v, text: v, selected: v === (set.state || 'enabled') })))
  const saved = h('span.saved', { role: 'status' })
  const settings = onSubmit(h('form.grid', {}, field('Name', name), field('Description', description), field('State', state), formAlert(),
    h('div.actions', {}, h('button', { type: 'submit', text: 'Save skillset' }), saved)), async () => {
    await post(`/skillset/${id}/update`, { name: name.value || null, description: description.value || null, state: state.value })
    saved.textContent = 'Saved.'
  })

  function edit (ability) {
    const choices = templates(datasets)
    const start = h('select', { name: 'template' },
      h('option', { value: '', text: ability ? '(keep this instruction)' : '(blank)' }),
      choices.map((t) => h('option', { value: t.id, text: t.label })))
    const aName = h('input', { name: 'name', value: ability?.name || '', required: true })
    const aDescription = h('input', { name: 'description', value: ability?.description || '' })
    const instruction = h('textarea.mono', { name: 'instruction', rows: 12, spellcheck: false, value: ability?.instruction || '' })
    const secret = h('select', { name: 'linkedSecretId' },
      h('option', { value: '', text: '(none)' }),
      secrets.map((s) => h('option', { value: s.id, text: `${s.name || s.id} (${s.type})`, selected: s.id === ability?.linkedSecretId })))
    const bot = h('select', { name: 'linkedBotId' },
      h('option', { value: '', text: '(none)' }),
      bots.map((b) => h('option', { value: b.id, text: b.name || b.id, selected: b.id === ability?.linkedBotId })))
    const secretHint = secrets.length ? 'What ${SECRET_DEFAULT} in the instruction stands for.' : 'No secrets yet: create one on the Skillsets page first.'
    start.addEventListener('change', () => {
      const chosen = choices.find((t) => t.id === start.value)
      if (!chosen) return
      instruction.value = chosen.instruction
      if (!aName.value) aName.value = chosen.name
      if (!aDescription.value) aDescription.value = chosen.description
      if (chosen.secret && !secret.value) {
        const pick = secrets.find((s) => s.type === 'bearer') || secrets[0]
        if (pick) secret.value = pick.id
      }
    })
    const form = onSubmit(h('form.ability', {},
      field('Start from', start, 'A template fills the instruction; edit its URL and parameters to fit.'),
      field('Ability name', aName),
      field('Description', aDescription, 'What the ability does: the model reads it to choose it.'),
      field('Instruction', instruction, 'One fenced action block (fetch, dataset/search, mcp/install, bot); $[name! flags|description] is a value the model fills.'),
      h('div.grid-2', {},
        field('Secret', secret, secretHint),
        field('Bot asked', bot, 'For a bot block: the bot it asks.')),
      formAlert(),
      h('div.actions', {},
        h('button', { type: 'submit', text: ability ? 'Save ability' : 'Create ability' }),
        h('button', { type: 'button', text: 'Cancel', on: { click: () => { editor.replaceChildren(); newButton.hidden = false } } }))),
    async () => {
      const body = {
        name: aName.value,
        description: aDescription.value || (ability ? null : undefined),
        instruction: instruction.value || (ability ? null : undefined),
        linkedSecretId: secret.value || (ability ? null : undefined),
        linkedBotId: bot.value || (ability ? null : undefined)
      }
      try {
        if (ability) await post(`/skillset/${id}/ability/${ability.id}/update`, body)
        else await post(`/skillset/${id}/ability/create`, body)
      } catch (err) {
        selectLine(instruction, err.message)
        throw err
      }
      await skillset(main, id)
    })
    editor.replaceChildren(section(ability ? `Edit ${ability.name || ability.id}` : 'New ability', form))
    newButton.hidden = true
    aName.focus()
  }

  const newButton = h('button', { type: 'button', text: 'New ability', on: { click: () => edit(null) } })
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/skillsets', text: '← Skillsets' })),
    h('h1', { text: set.name || set.id }),
    section('Skillset', settings),
    h('div.page-head', {}, h('h2', { text: 'Abilities' }), newButton),
    editor,
    abilities.length
      ? h('table', { 'aria-label': 'Abilities' },
        h('thead', {}, h('tr', {}, ...['Name', 'Action', 'Secret', 'Created', ''].map((t) => h('th', { text: t })))),
        h('tbody', {}, abilities.map((a) => h('tr', {},
          h('td', {}, h('strong', { text: a.name || '(unnamed)' }), h('div.muted', { text: a.description || '' })),
          h('td.mono', { text: actionOf(a.instruction) }),
          h('td', { text: a.linkedSecretId ? secretName[a.linkedSecretId] || a.linkedSecretId : '—' }),
          h('td', { text: when(a.createdAt) }),
          h('td.row-actions', {},
            h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${a.name || a.id}`, on: { click: () => edit(a) } }),
            h('button.danger', {
              type: 'button',
              text: 'Delete',
              'aria-label': `Delete ${a.name || a.id}`,
              on: {
                click: async () => {
                  if (!await confirmAction(`Delete the ability "${a.name || a.id}"?`)) return
                  await post(`/skillset/${id}/ability/${a.id}/delete`, {})
                  await skillset(main, id)
                }
              }
            }))))))
      : h('p.empty', { text: 'No abilities yet. Start one from a template: a JSON API, a dataset search or an MCP server.' }))
}
