from __future__ import annotations

import pytest

from routing.router import Router
from tests.routing._util import keyed, make_router


@pytest.fixture
def all_keys_router() -> Router:
    return make_router(keyed())
