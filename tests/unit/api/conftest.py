import pytest

from tests.api import token_client


@pytest.fixture
def api(operator):
    """The API as an Operator's script calls it, with a token of theirs (a module that needs
    another persona's defines its own `api`)."""
    return token_client(operator)
