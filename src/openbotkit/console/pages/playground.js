// Playground: pick a bot, chat with tokens streaming in, see each answer's sources and usage and
// the abilities it called; conversations are kept on the server and can be reopened.
import { all, get, post, stream } from '../api.js'
import { field, formAlert, h, showError, clearErrors, when } from '../ui.js'
import { answerText, groundingText, sourcesPart, usageText } from './sources.js'
import { activityLine, activityOf } from './activity.js'

export default async function playground (main, [botParam, conversationParam]) {
  const [bots, datasets, files] = await Promise.all([all('/bot/list'), all('/dataset/list'), all('/file/list')])
  const datasetNames = Object.fromEntries(datasets.map((d) => [d.id, d.name || d.id]))
  const fileNames = Object.fromEntries(files.map((f) => [f.id, f.name || f.id]))
  if (!bots.length) {
    main.replaceChildren(h('h1', { text: 'Playground' }), h('p.empty', {}, 'No bots yet. ', h('a', { href: '#/bots', text: 'Create a bot' }), ' first.'))
    return
  }
  let botId = bots.some((b) => b.id === botParam) ? botParam : bots[0].id
  let conversationId = conversationParam || null

  const picker = h('select', { name: 'botId' }, bots.map((b) => h('option', { value: b.id, text: b.name || b.id, selected: b.id === botId })))
  const convList = h('ul.conversations', { 'aria-label': 'Conversations' })
  const log = h('div.chat-log', { role: 'log', 'aria-label': 'Chat' })
  const message = h('textarea', { name: 'text', rows: 2, placeholder: 'Ask something…' })
  const send = h('button', { type: 'submit', text: 'Send' })
  const form = h('form.composer', {}, field('Message', message), formAlert(), send)

  function go () { location.hash = `#/playground/${botId}${conversationId ? '/' + conversationId : ''}` }

  async function loadConversations () {
    const items = (await all('/conversation/list', {}, 200)).filter((c) => c.botId === botId)
    convList.replaceChildren(
      h('li', {}, h('button', { type: 'button', text: 'New conversation', on: { click: () => { conversationId = null; go() } } })),
      ...items.map((c) => h('li', {}, h('a', {
        href: `#/playground/${botId}/${c.id}`,
        'aria-current': c.id === conversationId ? 'true' : false,
        text: c.name || when(c.createdAt)
      }))))
  }

  function bubble (type, text) {
    const body = h('div.text', { text })
    const el = h(`article.msg.${type}`, { 'aria-label': type === 'user' ? 'You' : 'Answer' }, h('div.who', { text: type === 'user' ? 'You' : 'Bot' }), body)
    log.append(el)
    log.scrollTop = log.scrollHeight
    return { el, body }
  }

  // Ability calls already on screen, by message id: a call streamed live is not drawn again
  // when the stored messages are read after the answer.
  const shownCalls = new Set()
  function call (activity, before) {
    if (activity.id && shownCalls.has(activity.id)) return
    if (activity.id) shownCalls.add(activity.id)
    const el = activityLine(activity)
    if (before) before.before(el); else log.append(el)
    log.scrollTop = log.scrollHeight
  }

  /** The calls of the turn just answered that the stream did not carry, read from the stored
   * messages (newest first), put before the answer. */
  async function storedCalls (answerEl) {
    const { items } = await get(`/conversation/${conversationId}/message/list`, { order: 'desc', take: 20 })
    const fresh = items.filter((m) => m.type === 'activity' && !shownCalls.has(m.id)).reverse()
    for (const m of fresh) call(activityOf(m), answerEl)
  }

  function finish (el, text, meta) {
    answerText(el.querySelector('.text'), text, meta)
    el.append(sourcesPart(meta, datasetNames, fileNames), h('p.usage', { text: usageText(meta?.usage) + groundingText(meta) }))
  }

  async function loadMessages () {
    log.replaceChildren()
    if (!conversationId) {
      log.append(h('p.muted', { text: 'Start a conversation: type a message below.' }))
      return
    }
    const messages = await all(`/conversation/${conversationId}/message/list`, { order: 'asc' })
    for (const m of messages) {
      if (m.type === 'activity') { call(activityOf(m)); continue }
      if (m.type !== 'user' && m.type !== 'bot') continue
      const { el } = bubble(m.type, m.text)
      if (m.type === 'bot') finish(el, m.text, m.meta)
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const text = message.value.trim()
    if (!text) return
    clearErrors(form)
    send.disabled = true
    const placeholder = log.querySelector('p.muted')
    try {
      if (!conversationId) {
        conversationId = (await post('/conversation/create', { botId })).id
        window.history.replaceState(null, '', `#/playground/${botId}/${conversationId}`)
      }
      placeholder?.remove()
      bubble('user', text)
      message.value = ''
      const answer = bubble('bot', '')
      answer.el.setAttribute('aria-busy', 'true')
      let result = null
      let usage = null
      let streamedCalls = 0
      for await (const ev of stream(`/conversation/${conversationId}/complete`, { text })) {
        if (ev.type === 'token') { answer.body.textContent += ev.data.token; log.scrollTop = log.scrollHeight }
        if (ev.type === 'usage') usage = ev.data
        // An ability call streams as a `message` event (ChatBotKit's) holding an activity message.
        if (ev.type === 'message' && ev.data?.type === 'activity') { streamedCalls++; call(activityOf(ev.data), answer.el) }
        if (ev.type === 'result') result = ev.data
      }
      const stored = result?.id ? await get(`/conversation/${conversationId}/message/${result.id}/fetch`) : null
      finish(answer.el, result?.text ?? answer.body.textContent, { ...(stored?.meta || {}), usage: stored?.meta?.usage || usage })
      answer.el.removeAttribute('aria-busy')
      if (!streamedCalls) await storedCalls(answer.el)
      await loadConversations()
    } catch (err) {
      showError(form, err)
    } finally {
      send.disabled = false
      message.focus()
    }
  })
  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); form.requestSubmit() }
  })
  picker.addEventListener('change', () => { botId = picker.value; conversationId = null; go() })

  main.replaceChildren(
    h('div.page-head', {}, h('h1', { text: 'Playground' }), field('Bot', picker)),
    h('div.playground', {}, h('aside', {}, h('h2', { text: 'Conversations' }), convList), h('div.chat', {}, log, form)))
  await Promise.all([loadConversations(), loadMessages()])
  message.focus()
}
