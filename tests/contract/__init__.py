"""The channel contract suite: the same behaviours checked on every platform adapter, end to end.

Each test runs a real `App` (intake, dispatcher, responder, `ReplyStream`) against one adapter
talking to its platform (the fake Bot API server, a real WebSocket, a terminal stream) and checks
what the person ends up seeing and what the platform was asked, with the platform's own
timestamps. A test runs only for the drivers that declare the behaviour it needs (`needs(...)`
marker, selected in `conftest.pytest_generate_tests`): nothing is skipped.

How a new adapter (Discord, Slack, ...) joins the suite:

1. Write a fake of the platform if it has none (like `tests/fakes/telegram_server.py`): it must
   record every call with an arrival timestamp and the visible text of every message, and be able
   to fail a call on request (rate limit with retry-after, markup refused, message gone).
2. Write a driver in `tests/contract/drivers.py`: subclass `Driver`, implement `_build` (the
   channel and the App config), `say`, `_visible_messages` and `requests`, and set the class
   flags to what the platform can exhibit (`shows_typing`, `paces_requests`, `edits_messages`,
   `has_chat_budget`, `can_inject_errors`, `renders_markup`, `can_delete_messages`,
   `drops_connections`). A flag set to True makes the driver implement the matching hook
   (`inject_rate_limit`, `reject_markup`, `say_concurrently`, ...).
3. Add the class to `DRIVERS` at the bottom of `drivers.py`. Every test whose needs the driver
   declares now runs for it; run `pytest tests/contract -q` a few times.

Two Discord drivers (DM and guild channel) or two Slack drivers (DM and channel thread) are
the expected shape, as Telegram has a private and a group driver.
"""
