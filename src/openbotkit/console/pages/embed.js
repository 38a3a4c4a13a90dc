// The widget snippet for a bot, with a key made for it that can only talk to that bot.
import { post } from '../api.js'
import { formAlert, h, section, showError } from '../ui.js'

/** Create a key limited to this bot (write scope: a public key, which starts conversations with
 * the bot and opens their sessions, nothing else) and show the <script> tag that puts the chat
 * bubble on any page. */
export async function widgetSnippet (target, bot) {
  const alert = formAlert()
  const box = section(`Embed ${bot.name || bot.id}`, h('p', { text: 'Creating a key that can only talk to this bot…' }), alert)
  target.replaceChildren(box)
  try {
    const key = await post('/token/create', {
      name: `widget: ${bot.name || bot.id}`,
      scope: 'write',
      bots: [bot.id],
      budgetTokens: 100000
    })
    const src = new URL('/widget.js', location.origin).href
    const snippet = `<script src="${src}" data-bot-id="${bot.id}" data-key="${key.token}"></script>`
    const code = h('textarea.snippet', { readOnly: true, rows: 3, 'aria-label': 'Widget snippet', value: snippet })
    box.replaceChildren(h('h2', { text: `Embed ${bot.name || bot.id}` }),
      h('p', { text: 'Paste this into any page to add a chat bubble. Its key can only talk to this bot, up to 100,000 tokens; revoke it on the Keys page.' }),
      code,
      h('div.actions', {},
        h('button', { type: 'button', text: 'Copy snippet', on: { click: () => navigator.clipboard?.writeText(snippet) } }),
        h('button', { type: 'button', text: 'Close', on: { click: () => target.replaceChildren() } })))
  } catch (err) {
    showError(box, err)
  }
}
