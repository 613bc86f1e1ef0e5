"""The webchat page in headless Chromium against the real App: what a person sees and can do.

Every test drives the page through its own controls (keyboard, buttons, mouse wheel) and waits on
DOM conditions, never on fixed sleeps. Screenshots of each state go to pytest's tmp_path, or to
$WEBCHAT_SCREENSHOTS when set.
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, WebSocketRoute

from bot.app import App
from tests.channels.webchat.helpers import (
    WAIT,
    EchoProvider,
    GatedProvider,
    Shots,
    open_page,
    running_app,
    send,
    wait_done,
)
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider

FENCE = "```"
MARKDOWN = f"""# A heading

A paragraph with **bold**, *italic*, `inline code` and ~~struck~~ text.
Its second line.

{FENCE}python
def hello():
    return "<b>not bold</b>"
{FENCE}

1. First
2. Second
   - nested *one*
   - nested two
3. Third

- [a link](https://example.com/page?x=1&y=2)
- mail <mailto:someone@example.com>
- bare https://example.org/path.

> quoted words

| Name | Value |
|------|:-----:|
| one  | **1** |

Attacks: <img src=x onerror="window.__pwned=1;alert(1)"> and <script>window.__pwned=2;alert(2)</script>
[click me](javascript:alert(3)) [upper](JAVASCRIPT:alert(4)) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)
![pic](javascript:alert(6)) <a href="javascript:alert(7)">raw link</a> <javascript:alert(8)> [rel](/relative)
"""

# wait_for_function takes functions only: a bare expression would need eval(), which the page's
# Content-Security-Policy forbids (as it should)

# what the page has as elements and attributes, for the assertions
DOM_REPORT = """() => {
  const bot = document.querySelector('.msg.bot');
  const q = (s) => [...bot.querySelectorAll(s)];
  const attrs = [];
  for (const el of document.querySelectorAll('*')) for (const a of el.attributes) attrs.push(a.name);
  return {
    h1: q('h1').map(e => e.textContent),
    strong: q('strong').map(e => e.textContent),
    em: q('em').map(e => e.textContent),
    del: q('del').map(e => e.textContent),
    inlineCode: q(':not(pre) > code').map(e => e.textContent),
    firstParagraphBreaks: bot.querySelector('p').querySelectorAll('br').length,
    lang: q('.code .lang').map(e => e.dataset.lang),
    code: q('pre code').map(e => e.textContent),
    olItems: q('ol > li').length,
    nested: q('ol > li > ul > li').map(e => e.textContent),
    links: q('a').map(e => ({href: e.getAttribute('href'), target: e.target, rel: e.rel, text: e.textContent})),
    quote: q('blockquote').map(e => e.textContent),
    cells: q('table th, table td').map(e => e.textContent),
    injected: document.querySelectorAll('img, iframe, object, embed, b, .msg script').length,
    scripts: document.querySelectorAll('script').length,
    handlerAttrs: attrs.filter(a => a.startsWith('on')),
    badHrefs: [...document.querySelectorAll('[href], [src]')].map(e => e.getAttribute('href') || e.getAttribute('src'))
      .filter(h => !/^(https?:|mailto:|data:,$)/.test(h)),
    pwned: window.__pwned ?? null,
    text: bot.textContent,
  };
}"""


async def test_markdown_is_rendered_and_model_text_cannot_inject_markup(browser: Browser, shots: Shots):
    async with running_app(ScriptedProvider([MARKDOWN[:40], MARKDOWN[40:300], MARKDOWN[300:]])) as app:
        w = await open_page(browser, app.base_url + "/", permissions=["clipboard-read", "clipboard-write"])
        page = w.page
        await send(page, "Show me some Markdown")
        await wait_done(page)
        r = await page.evaluate(DOM_REPORT)
        await shots(page, "rendered")
        # the copy button copies the code, exactly
        await page.click(".code .copy")
        await page.wait_for_selector(".code .copy[data-label='Copied']", timeout=WAIT)
        copied = await page.evaluate("navigator.clipboard.readText()")
        w.assert_clean()
    assert r["h1"] == ["A heading"]
    assert r["strong"] == ["bold", "1"] and r["em"] == ["italic", "one"] and r["del"] == ["struck"]
    assert r["inlineCode"] == ["inline code"] and r["firstParagraphBreaks"] == 1
    assert r["lang"] == ["python"]
    assert r["code"] == ['def hello():\n    return "<b>not bold</b>"'] == [copied]
    assert r["olItems"] == 3 and r["nested"] == ["nested one", "nested two"]
    new_tab = {"target": "_blank", "rel": "noopener noreferrer"}
    assert r["links"] == [
        {"href": "https://example.com/page?x=1&y=2", **new_tab, "text": "a link"},
        {"href": "mailto:someone@example.com", **new_tab, "text": "mailto:someone@example.com"},
        {"href": "https://example.org/path", **new_tab, "text": "https://example.org/path"},
    ]
    assert r["quote"] == ["quoted words"] and r["cells"] == ["Name", "Value", "one", "1"]
    # the attacks are shown as the text they are; nothing of them became markup or ran
    assert r["injected"] == 0 and r["scripts"] == 1 and r["handlerAttrs"] == [] and r["badHrefs"] == []
    assert r["pwned"] is None
    for shown in ('<img src=x onerror="window.__pwned=1;alert(1)">', "<script>window.__pwned=2;alert(2)</script>"):
        assert shown in r["text"]
    assert "[click me](javascript:alert(3))" in r["text"] and "[rel](/relative)" in r["text"]


LAST_P = "() => [...document.querySelectorAll('.msg.bot p')].at(-1)?.textContent.trim()"


async def test_half_written_markdown_renders_as_far_as_it_goes(browser: Browser, shots: Shots):
    provider = GatedProvider()
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        await send(page, "Show me code")
        provider.push("Here is the code:\n\n", f"{FENCE}python\nprint('a')\n")
        await page.wait_for_function(
            "() => document.querySelector('.msg.bot .code[data-open=\"1\"] pre code')?.textContent === \"print('a')\"",
            timeout=WAIT,
        )
        assert await page.get_attribute(".msg.bot .code .lang", "data-lang") == "python"
        await page.evaluate("document.querySelector('.msg.bot p').__kept = true")  # to see it is not rebuilt
        await shots(page, "open-fence")
        provider.push("print('b')\n", f"{FENCE}\n\nAnd **")
        await page.wait_for_function(LAST_P + " === 'And'", timeout=WAIT)  # a marker with nothing after it yet
        closed = await page.evaluate(
            "() => { const c = document.querySelector('.msg.bot .code'); return [c.dataset.open ?? null, c.querySelector('code').textContent]; }"
        )
        provider.push("bold")
        await page.wait_for_function(  # shown bold already, before its closing marker came
            "() => document.querySelector('.msg.bot p:last-of-type strong')?.textContent === 'bold'", timeout=WAIT
        )
        await shots(page, "open-bold")
        provider.push(" text** done.")
        await page.wait_for_function(LAST_P + " === 'And bold text done.'", timeout=WAIT)
        strong = await page.text_content(".msg.bot p:last-of-type strong")
        kept = await page.evaluate("document.querySelector('.msg.bot p').__kept === true")
        streaming = await page.evaluate("document.querySelector('.msg.bot').classList.contains('streaming')")
        provider.end()
        await wait_done(page)
        final = await page.text_content(".msg.bot")
        w.assert_clean()
    assert closed == [None, "print('a')\nprint('b')"]
    assert strong == "bold text" and kept and streaming
    assert final == "Here is the code:print('a')\nprint('b')And bold text done."


PARAGRAPH_COUNT = "document.querySelectorAll('.msg.bot p').length"
FROM_BOTTOM = (
    "(() => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight; })()"
)


async def test_page_follows_the_stream_only_while_the_reader_is_at_the_bottom(browser: Browser, shots: Shots):
    provider = GatedProvider()

    async def more(until: int) -> None:
        have = await page.evaluate(PARAGRAPH_COUNT)
        provider.push(*(f"Paragraph {i} of a long story.\n\n" for i in range(have, until)))
        await page.wait_for_function(f"() => {PARAGRAPH_COUNT} >= {until}", timeout=WAIT)

    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        await send(page, "Tell me a long story")
        await more(40)
        overflow = await page.evaluate(
            "(() => { const l = document.getElementById('log'); return l.scrollHeight / l.clientHeight; })()"
        )
        at_bottom_1 = await page.evaluate(FROM_BOTTOM)
        await more(50)
        at_bottom_2 = await page.evaluate(FROM_BOTTOM)
        # the reader scrolls up with the mouse wheel to read something
        await page.mouse.move(640, 300)
        await page.mouse.wheel(0, -900)
        await page.wait_for_function(f"() => {FROM_BOTTOM} > 500", timeout=WAIT)
        top = await page.evaluate("document.getElementById('log').scrollTop")
        await more(70)
        top_after = await page.evaluate("document.getElementById('log').scrollTop")
        jump_visible = await page.is_visible("#jump")
        await shots(page, "scrolled-up-new-text")
        # "new text" takes the reader down, and the page follows again
        await page.click("#jump")
        await page.wait_for_function(f"() => {FROM_BOTTOM} < 2", timeout=WAIT)
        await more(80)
        at_bottom_3 = await page.evaluate(FROM_BOTTOM)
        jump_after = await page.is_visible("#jump")
        provider.end()
        await wait_done(page)
        w.assert_clean()
    assert overflow > 1.5
    assert at_bottom_1 < 2 and at_bottom_2 < 2 and at_bottom_3 < 2
    assert top_after == top and jump_visible
    assert not jump_after


async def test_enter_sends_shift_enter_breaks_the_line_and_a_paste_keeps_its_lines(browser: Browser, shots: Shots):
    provider = ScriptedProvider(["Noted."])
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/", permissions=["clipboard-read", "clipboard-write"])
        page = w.page
        one_line = await page.evaluate("document.getElementById('text').clientHeight")
        await page.click("#text")
        await page.keyboard.type("first line")
        await page.keyboard.press("Shift+Enter")
        await page.keyboard.type("second line")
        typed = await page.input_value("#text")
        grown = await page.evaluate("document.getElementById('text').clientHeight")
        await shots(page, "two-lines-typed")
        await page.keyboard.press("Enter")
        await wait_done(page)
        first = await page.text_content(".turn:nth-child(1) .msg.user")
        # a paste of several lines, indentation and all
        pasted = "def f():\n    return 1\n\nprint(f())"
        await page.evaluate("t => navigator.clipboard.writeText(t)", pasted)
        await page.click("#text")
        await page.keyboard.press("Control+V")
        in_box = await page.input_value("#text")
        await page.keyboard.press("Enter")
        await wait_done(page, 2)
        second = await page.text_content(".turn:nth-child(2) .msg.user")
        height = await page.evaluate(
            "document.querySelector('.turn:nth-child(2) .msg.user').getBoundingClientRect().height"
        )
        await shots(page, "sent")
        box_after = await page.input_value("#text")
        w.assert_clean()
    assert typed == "first line\nsecond line" and grown > one_line
    assert first == "first line\nsecond line"
    assert in_box == pasted and second == pasted and height > 60  # four lines, not one
    assert [r.messages[-1].content for r in provider.requests] == ["first line\nsecond line", pasted]
    assert box_after == ""


async def test_reload_shows_the_conversation_again(browser: Browser, shots: Shots):
    provider = EchoProvider()
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        for i, q in enumerate(["What is 2+2?", "And 3+3?"], 1):
            await send(page, q)
            await wait_done(page, i)
        await app.responder.flush()  # the exchange is written once delivered
        await page.reload()
        await page.wait_for_selector(".turn[data-history='1'] .msg.bot[data-done='1']", timeout=WAIT)
        restored = await page.evaluate(
            "[...document.querySelectorAll('#log .msg')].map(e => [e.classList.contains('user') ? 'user' : 'bot', e.textContent])"
        )
        bold = await page.evaluate("[...document.querySelectorAll('.msg.bot strong')].map(e => e.textContent)")
        await shots(page, "restored")
        await send(page, "And 4+4?")
        await wait_done(page, 3)
        after = await page.evaluate("[...document.querySelectorAll('#log .msg')].map(e => e.textContent)")
        w.assert_clean()
    assert restored == [
        ["user", "What is 2+2?"],
        ["bot", "Answer to: What is 2+2?"],
        ["user", "And 3+3?"],
        ["bot", "Answer to: And 3+3?"],
    ]
    assert bold == ["What is 2+2?", "And 3+3?"]  # rendered Markdown, not the source
    assert after[-2:] == ["And 4+4?", "Answer to: And 4+4?"]
    assert len(provider.requests) == 3


async def test_three_quick_questions_each_get_their_answer_right_under_them(browser: Browser, shots: Shots):
    provider = EchoProvider(interval=0.03, gated=True)
    questions = ["Why is the sky blue?", "How far is the moon?", "What is a quark?"]
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        for q in questions:
            await send(page, q)
        await page.wait_for_function(
            "() => document.querySelectorAll('.turn[data-state=\"sent\"]').length == 2", timeout=WAIT
        )
        await page.wait_for_selector(".turn:nth-child(1) .row.typing", timeout=WAIT)
        await shots(page, "asked")
        asked_before_answers = await page.evaluate("document.querySelectorAll('.msg.bot').length") == 0
        provider.gate.set()  # now the answers come, one after the other
        await page.wait_for_selector(".turn:nth-child(1) .msg.bot", timeout=WAIT)
        await shots(page, "first-answer-streaming")
        await wait_done(page, 3)
        order = await page.evaluate(
            "[...document.querySelectorAll('#log .msg')].map(e => [e.classList.contains('user') ? 'user' : 'bot', e.textContent])"
        )
        boxes = await page.evaluate(
            "[...document.querySelectorAll('#log .msg')].map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; })"
        )
        await shots(page, "answered")
        w.assert_clean()
    assert asked_before_answers
    expected = []
    for q in questions:
        expected += [["user", q], ["bot", f"Answer to: {q}"]]
    assert order == expected
    assert all(a[1] <= b[0] for a, b in zip(boxes, boxes[1:], strict=False)), boxes  # on screen in that order too


async def test_long_messages_fold_with_show_more(browser: Browser, shots: Shots):
    provider = ScriptedProvider(["Got it."])
    async with running_app(provider, bot={"max_input_chars": 400_000}) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        big = await page.evaluate(
            "() => { const t = Array.from({length: 3000}, (_, i) => `line ${i} ` + 'lorem ipsum '.repeat(8).trim()).join('\\n');"
            " document.getElementById('text').value = t; return t; }"
        )
        await page.press("#text", "Enter")
        await wait_done(page)
        user = ".turn:nth-child(1) .msg.user"
        folded = await page.evaluate(
            f"(() => {{ const e = document.querySelector('{user}'); return [e.textContent.length, e.getBoundingClientRect().height, e.dataset.collapsed]; }})()"
        )
        button = await page.text_content(".turn:nth-child(1) .more")
        await shots(page, "folded")
        await page.click(".turn:nth-child(1) .more")
        opened = await page.evaluate(
            f"(() => {{ const e = document.querySelector('{user}'); return [e.textContent, e.getBoundingClientRect().height]; }})()"
        )
        await page.click(".turn:nth-child(1) .more")
        refolded = await page.evaluate(f"document.querySelector('{user}').textContent.length")
        # many short lines fold too; a short message has no button
        await send(page, "\n".join(f"item {i}" for i in range(30)))
        await wait_done(page, 2)
        await send(page, "short\nand sweet")
        await wait_done(page, 3)
        buttons = await page.evaluate("[...document.querySelectorAll('.turn')].map(t => !!t.querySelector('.more'))")
        answer = await page.text_content(".turn:nth-child(1) .msg.bot")
        w.assert_clean()
    assert len(big) > 300_000
    assert folded[0] <= 1500 and folded[1] < 400 and folded[2] == "1"
    assert button.startswith("Show more (") and "3,000 lines" in button
    assert opened[0] == big and opened[1] > 10_000
    assert refolded == folded[0]
    assert buttons == [True, True, False]
    # the whole message went out (the runtime read what fits the model's window, and says so)
    assert answer.startswith("Got it.") and f"of its {len(big):,} characters" in answer


RECORD_CONN = """
window.__conn = [document.getElementById('conn').dataset.state];
new MutationObserver(() => window.__conn.push(document.getElementById('conn').dataset.state))
  .observe(document.getElementById('conn'), {attributes: true, attributeFilter: ['data-state']});
"""


async def test_connection_state_is_shown_and_messages_typed_offline_go_out_on_reconnect(browser: Browser, shots: Shots):
    first = ScriptedProvider(["First answer."])
    app = App(make_config(), providers={"local": first})
    await app.start()
    port = app.http_port
    again: App | None = None
    try:
        w = await open_page(browser, app.base_url + "/", expect_offline=True)
        page = w.page
        await page.evaluate(RECORD_CONN)
        await shots(page, "online")
        await send(page, "hello")
        await wait_done(page)
        await app.stop()  # the server goes away
        await page.wait_for_selector("#conn[data-state='offline']", timeout=WAIT)
        await send(page, "are you back?")
        await page.wait_for_selector(".turn[data-state='queued']", timeout=WAIT)
        # between two attempts: the state, a countdown to the next one, and a button to try now
        offline = await page.wait_for_function(
            "() => { const c = document.getElementById('conn'); return c.dataset.state === 'offline'"
            " && [document.getElementById('conn-label').textContent, !document.getElementById('retry').hidden]; }",
            timeout=WAIT,
        )
        label, retry_button = await offline.json_value()
        await shots(page, "offline-queued")
        second = ScriptedProvider(["Yes, back."])
        again = App(make_config(http={"port": port}), providers={"local": second})
        await again.start()  # the server is back on the same address
        await wait_done(page, 2)
        await page.wait_for_selector("#conn[data-state='online']", timeout=WAIT)
        states = await page.evaluate("window.__conn")
        answer = await page.text_content(".turn:nth-child(2) .msg.bot")
        queued_left = await page.locator(".turn[data-state='queued']").count()
        await shots(page, "back-online")
        w.assert_clean()
    finally:
        await app.stop()
        if again is not None:
            await again.stop()
    assert label.startswith("Offline, retrying in ") and retry_button
    seen = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert seen[0] == "online" and seen[-1] == "online", seen
    after = seen[seen.index("offline") :]
    assert "reconnecting" in after and after.index("reconnecting") < len(after) - 1, seen
    assert answer == "Yes, back." and queued_left == 0
    assert [r.messages[-1].content for r in second.requests] == ["are you back?"]


async def test_an_answer_cut_by_a_dropped_connection_is_marked_and_can_be_asked_again(browser: Browser, shots: Shots):
    provider = GatedProvider()
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/", expect_offline=True)
        page = w.page
        await send(page, "Tell me everything")
        provider.push("The first words")
        await page.wait_for_function(
            "() => document.querySelector('.msg.bot')?.textContent === 'The first words'", timeout=WAIT
        )
        for ws in list(app.channels["webchat"]._sockets):  # the connection drops mid-answer
            await ws.close()
        await page.wait_for_selector(".turn[data-state='lost'] .linkish", timeout=WAIT)
        cut = await page.evaluate(
            "() => { const b = document.querySelector('.msg.bot'); return [b.dataset.cut, b.dataset.done ?? null, b.parentNode.textContent]; }"
        )
        provider.end()  # the server finishes that reply for nobody
        await page.wait_for_selector("#conn[data-state='online']", timeout=WAIT)  # back by itself
        await shots(page, "cut")
        await page.click(".turn[data-state='lost'] .linkish")  # "Send again"
        provider.push("The whole answer.")
        provider.end()
        await wait_done(page)
        answers = await page.evaluate(
            "[...document.querySelectorAll('.turn:nth-child(1) .msg.bot')].map(e => e.textContent)"
        )
        state = await page.get_attribute(".turn:nth-child(1)", "data-state")
        w.assert_clean()
    assert cut[0] == "1" and cut[1] is None and "Connection lost" in cut[2]
    assert answers == ["The first words", "The whole answer."] and state == "answered"
    assert [r.messages[-1].content for r in provider.requests] == ["Tell me everything", "Tell me everything"]


async def test_a_silently_dead_link_is_noticed_by_its_missing_pong_and_replaced(browser: Browser, shots: Shots):
    links: list[dict[str, bool]] = []

    def relay(ws: WebSocketRoute) -> None:  # between page and server; a dead link passes nothing either way
        server = ws.connect_to_server()
        link = {"dead": False}
        links.append(link)
        ws.on_message(lambda m: None if link["dead"] else server.send(m))
        server.on_message(lambda m: None if link["dead"] else ws.send(m))

    async def setup(page: Page) -> None:
        await page.route_web_socket(re.compile(r"/ws\?session="), relay)
        await page.clock.install()

    async with running_app(ScriptedProvider(["Still here."])) as app:
        w = await open_page(browser, app.base_url + "/", before=setup)
        page = w.page
        await send(page, "Hello?")  # once answered, no frame is on its way any more (any frame counts as alive)
        await wait_done(page)
        # the page's time moves only when the test says so: the offline state can't pass unseen
        await page.clock.pause_at((await page.evaluate("Date.now()") + 2000) / 1000)  # seconds, in Python
        links[0]["dead"] = True  # no close, no error: the frames just stop
        # the next ping is due within 25 s, its pong within 10 s more: a quarter second at a time
        # past 15 s (the retry comes at least 0.4 s after the link is given up)
        await page.clock.run_for(15_000)
        state = None
        for _ in range(100):
            state = await page.get_attribute("#conn", "data-state")
            if state != "online":
                break
            await page.clock.run_for(250)
        assert state == "offline"
        await shots(page, "noticed")
        await page.clock.resume()
        await page.clock.run_for(1_000)  # the first retry comes within 0.6 s
        await page.wait_for_selector("#conn[data-state='online']", timeout=WAIT)
        await send(page, "Are you there?")
        await wait_done(page, 2)
        answer = await page.text_content(".turn:nth-child(2) .msg.bot")
        w.assert_clean()
    assert len(links) == 2 and answer == "Still here."


async def test_stop_button_interrupts_the_answer_which_keeps_its_text(browser: Browser, shots: Shots):
    provider = GatedProvider()
    async with running_app(provider) as app:
        w = await open_page(browser, app.base_url + "/")
        page = w.page
        hidden_before = await page.is_hidden("#stop")
        await send(page, "Write me an essay")
        provider.push("Once upon a time", " there was a very long essay")
        await page.wait_for_function(
            "() => document.querySelector('.msg.bot')?.textContent.endsWith('very long essay')", timeout=WAIT
        )
        visible_while_writing = await page.is_visible("#stop")
        await shots(page, "writing")
        await page.click("#stop")
        await wait_done(page)
        stopped = await page.text_content(".msg.bot")
        await page.wait_for_selector("#stop", state="hidden", timeout=WAIT)
        await shots(page, "stopped")
        await send(page, "Shorter please")
        provider.push("Short.")
        provider.end()
        await wait_done(page, 2)
        second = await page.text_content(".turn:nth-child(2) .msg.bot")
        w.assert_clean()
    assert hidden_before and visible_while_writing
    assert stopped.startswith("Once upon a time there was a very long essay") and stopped.endswith("[…]"), stopped
    assert provider.cancelled == 1
    assert second == "Short."


PHONE_ANSWER = f"""Here is a long line of code:

{FENCE}bash
curl -sS -X POST https://api.example.com/v1/some/really/long/endpoint/path --header "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789" --data '{{"key": "value"}}'
{FENCE}

A long link: https://example.com/a/very/long/path/that/does/not/break/by/itself/anywhere/at/all/ok and a long word: {"x" * 120}

| Column one | Column two | Column three | Column four | Column five |
|---|---|---|---|---|
| some text | some more text | even more text here | and more | the end |
"""


async def test_phone_width_tells_the_sides_apart_and_never_scrolls_sideways(browser: Browser, shots: Shots):
    async with running_app(ScriptedProvider([PHONE_ANSWER])) as app:
        w = await open_page(
            browser,
            app.base_url + "/",
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        page = w.page
        await send(page, "Show me something wide " + "y" * 80)
        await wait_done(page)
        m = await page.evaluate(
            """() => {
              const rect = (s) => document.querySelector(s).getBoundingClientRect();
              const log = document.getElementById('log'), pre = document.querySelector('.code pre');
              const tw = document.querySelector('.table-wrap');
              return {
                width: window.innerWidth,
                docScroll: document.documentElement.scrollWidth, bodyScroll: document.body.scrollWidth,
                logScroll: log.scrollWidth, logClient: log.clientWidth,
                preScrolls: pre.scrollWidth > pre.clientWidth, preRight: pre.getBoundingClientRect().right,
                tableRight: tw.getBoundingClientRect().right,
                user: rect('.msg.user'), bot: rect('.msg.bot'),
                userWho: document.querySelector('.row.user .who').textContent,
                botWho: document.querySelector('.row.bot .who').textContent,
                userWhoRight: rect('.row.user .who').right, botWhoLeft: rect('.row.bot .who').left,
              };
            }"""
        )
        await shots(page, "phone")
        w.assert_clean()
    assert m["width"] == 390
    assert m["docScroll"] <= 390 and m["bodyScroll"] <= 390 and m["logScroll"] <= m["logClient"], m
    assert m["preScrolls"] and m["preRight"] <= 390 and m["tableRight"] <= 390  # code scrolls inside its block
    # the person's message on the right, the bot's on the left, each labelled
    assert m["userWho"] == "You" and m["botWho"] == "Switchboard"
    assert m["user"]["right"] > 370 and m["user"]["left"] > 390 * 0.1
    assert m["bot"]["left"] < 20 and m["userWhoRight"] > 360 and m["botWhoLeft"] < 30
