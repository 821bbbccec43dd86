// Small helpers of the console page: elements by id, elements made with text only (never
// HTML: what an event carries is shown, not parsed), problems shown by a field, the token's header.

/** The page's element with this id; the page is static, so a missing one is a bug of the page. */
export function byId<T extends HTMLElement> (id: string): T {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`console page: no #${id}`)
  return element as T
}

/** An element with a class and text content. */
export function element<K extends keyof HTMLElementTagNameMap> (tag: K, className: string, text = ''): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag)
  made.className = className
  made.textContent = text
  return made
}

/** The token, if one was accepted, as the request header that carries it. */
export const authorization = (token: string | undefined): Record<string, string> =>
  token === undefined ? {} : { authorization: `Bearer ${token}` }

/** A list of problem messages, replacing what the list showed before. */
export function showProblems (list: HTMLElement, field: HTMLElement, messages: string[]): void {
  list.replaceChildren(...messages.map(message => element('li', 'problem', message)))
  if (messages.length > 0) field.setAttribute('aria-invalid', 'true')
  else field.removeAttribute('aria-invalid')
}
