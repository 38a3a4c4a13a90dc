// openbotkit chat widget: <script src="https://HOST/widget.js" data-bot-id="BOT" data-key="KEY"></script>
// adds a chat bubble talking to that bot on any page. The key should be one that can only talk
// to that bot (the console's Embed button makes one): with it the widget starts a conversation
// and opens that conversation's session, then talks with the session token, which reaches that
// one conversation alone and expires. Self-contained: no imports, shadow DOM.
(() => {
  const script = document.currentScript
  if (!script) return
  const origin = new URL(script.src, location.href).origin
  const botId = script.dataset.botId
  const key = script.dataset.key
  const title = script.dataset.title || 'Chat'
  const storeKey = `obk.widget.${botId}`
  // {conversationId, token, expiresAt} of this tab's conversation, while its session lasts.
  let chat = null
  try { chat = JSON.parse(sessionStorage.getItem(storeKey)) } catch { /* none kept */ }

  const host = document.createElement('div')
  host.setAttribute('data-openbotkit-widget', '')
  const root = host.attachShadow({ mode: 'open' })
  root.innerHTML = `
<style>
  :host { all: initial; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; }
  .bubble { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%; border: 0; background: #2f5bd3; color: #fff; cursor: pointer; box-shadow: 0 4px 16px rgb(0 0 0 / .25); z-index: 2147483000; }
  .bubble svg { width: 26px; height: 26px; }
  .panel { position: fixed; right: 20px; bottom: 88px; width: min(380px, calc(100vw - 40px)); height: min(540px, calc(100vh - 120px)); background: #fff; border: 1px solid #d9dde3; border-radius: 12px; box-shadow: 0 8px 32px rgb(0 0 0 / .2); display: flex; flex-direction: column; overflow: hidden; z-index: 2147483000; }
  .panel[hidden] { display: none; }
  header { background: #2f5bd3; color: #fff; padding: .6rem .9rem; font-weight: 600; display: flex; justify-content: space-between; align-items: center; }
  header button { background: none; border: 0; color: inherit; font-size: 1.2rem; cursor: pointer; }
  .log { flex: 1; overflow: auto; padding: .75rem; display: flex; flex-direction: column; gap: .6rem; background: #f6f7f9; }
  .msg { max-width: 85%; padding: .5rem .7rem; border-radius: 10px; white-space: pre-wrap; }
  .user { align-self: flex-end; background: #2f5bd3; color: #fff; }
  .bot { align-self: flex-start; background: #fff; border: 1px solid #d9dde3; }
  .sources { margin-top: .4rem; font-size: .8rem; color: #5b6470; }
  .sources summary { cursor: pointer; font-weight: 600; }
  .sources blockquote { margin: .2rem 0; padding-left: .5rem; border-left: 3px solid #d9dde3; }
  .error { color: #b42318; font-size: .85rem; }
  form { display: flex; gap: .5rem; padding: .6rem; border-top: 1px solid #d9dde3; }
  input { flex: 1; font: inherit; padding: .45rem .6rem; border: 1px solid #d9dde3; border-radius: 6px; }
  form button { font: inherit; background: #2f5bd3; color: #fff; border: 0; border-radius: 6px; padding: .45rem .9rem; cursor: pointer; }
  form button:disabled { opacity: .6; }
</style>
<button class="bubble" type="button" aria-label="Open chat" aria-expanded="false"><svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M4 4h16v12H7l-3 3z"/></svg></button>
<section class="panel" hidden aria-label="Chat">
  <header><span class="title"></span><button type="button" class="close" aria-label="Close chat">×</button></header>
  <div class="log" role="log"></div>
  <form><input name="text" aria-label="Message" autocomplete="off" placeholder="Ask a question"><button type="submit">Send</button></form>
</section>`
  const $ = (sel) => root.querySelector(sel)
  const bubble = $('.bubble'); const panel = $('.panel'); const log = $('.log'); const form = $('form'); const input = $('input'); const send = $('form button')
  $('.title').textContent = title

  function toggle (open) {
    panel.hidden = !open
    bubble.setAttribute('aria-expanded', String(open))
    bubble.setAttribute('aria-label', open ? 'Close chat' : 'Open chat')
    if (open) input.focus()
  }
  bubble.addEventListener('click', () => toggle(panel.hidden))
  $('.close').addEventListener('click', () => toggle(false))

  function add (cls, text) {
    const el = document.createElement('div')
    el.className = `msg ${cls}`
    el.textContent = text
    log.append(el)
    log.scrollTop = log.scrollHeight
    return el
  }

  async function api (path, body, { accept = 'application/json', token = key } = {}) {
    const res = await fetch(`${origin}/api/v1${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { Authorization: `Bearer ${token}`, Accept: accept, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!res.ok) {
      let body = {}
      try { body = await res.json() } catch { /* keep the status */ }
      const err = new Error(body.message || `request failed (${res.status})`)
      err.status = res.status
      throw err
    }
    return res
  }

  /** This tab's conversation and a live session for it: a new pair when there is none yet or
   * its session is (about to be) over. */
  async function conversation () {
    if (chat && chat.expiresAt > Date.now() + 10000) return chat
    const { id } = await (await api('/conversation/create', { botId })).json()
    const session = await (await api(`/conversation/${id}/session/create`, {})).json()
    chat = { conversationId: id, token: session.token, expiresAt: session.expiresAt }
    sessionStorage.setItem(storeKey, JSON.stringify(chat))
    return chat
  }

  function sources (el, meta) {
    const records = (meta && meta.sourceRecords) || []
    if (!records.length) return
    const details = document.createElement('details')
    details.className = 'sources'
    const summary = document.createElement('summary')
    summary.textContent = `Sources (${records.length})`
    details.append(summary)
    for (const r of records) {
      const quote = document.createElement('blockquote')
      quote.textContent = r.text.length > 280 ? `${r.text.slice(0, 280)}…` : r.text
      details.append(quote)
    }
    el.append(details)
  }

  async function ask (text) {
    const answer = add('bot', '')
    try {
      try {
        await answerInto(answer, text, await conversation())
      } catch (err) {
        // The session ended before its time (it expired meanwhile, or its conversation is
        // gone): once more, in a new conversation.
        if (err.status !== 401 || answer.textContent) throw err
        chat = null
        await answerInto(answer, text, await conversation())
      }
    } catch (err) {
      if (!answer.textContent) answer.remove()
      throw err
    }
  }

  async function answerInto (answer, text, { conversationId, token }) {
    const res = await api(`/conversation/${conversationId}/complete`, { text }, { accept: 'application/jsonl', token })
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''; let result = null
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buffer += value
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (!line) continue
        const ev = JSON.parse(line)
        if (ev.type === 'token') { answer.textContent += ev.data.token; log.scrollTop = log.scrollHeight }
        if (ev.type === 'error') throw new Error(ev.data.message)
        if (ev.type === 'result') result = ev.data
      }
    }
    if (result) {
      answer.textContent = result.text
      const message = await (await api(`/conversation/${conversationId}/message/${result.id}/fetch`, undefined, { token })).json()
      sources(answer, message.meta)
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const text = input.value.trim()
    if (!text) return
    input.value = ''
    add('user', text)
    send.disabled = true
    try {
      await ask(text)
    } catch (err) {
      add('error', err.message)
    } finally {
      send.disabled = false
      input.focus()
    }
  })

  ;(document.body || document.documentElement).append(host)
})()
