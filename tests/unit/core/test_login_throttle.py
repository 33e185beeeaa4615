"""Password guessing on the sign-in page: after LOGIN_FAILURE_LIMIT failures one username is
locked out from that address for the cool-off, with a page that says so; other users and
addresses are not; `axes_reset` and `ensure_admin` lift it."""

from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
GUESSER = "192.0.2.10"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Each test checks a dozen passwords; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(client, username: str, password: str, address: str = GUESSER):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def guess_until_locked(client, username: str = "operator") -> list[int]:
    return [sign_in(client, username, f"guess {n}").status_code for n in range(settings.AXES_FAILURE_LIMIT)]


def test_the_last_allowed_failure_locks_the_username_out_with_a_page_that_says_so(client, operator):
    assert guess_until_locked(client) == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]

    refused = sign_in(client, "operator", PASSWORD)  # the right password, too late

    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Too many failed sign-ins for operator from your address: try again in 15 minutes, or ask an administrator" in page
    assert 'name="username"' in page and 'value="operator"' in page  # the form, ready for later
    assert "_auth_user_id" not in client.session


def test_a_failure_before_the_limit_says_only_that_the_password_did_not_match(client, operator):
    page = sign_in(client, "operator", "wrong").content.decode()

    assert "didn't match" in page and "Too many failed sign-ins" not in page


def test_other_users_and_other_addresses_still_sign_in(client, operator, viewer):
    guess_until_locked(client)

    assert sign_in(client, "viewer", PASSWORD).status_code == 302
    client.logout()
    assert sign_in(client, "operator", PASSWORD, address="192.0.2.20").status_code == 302


def test_after_the_cool_off_the_user_signs_in_again(client, operator):
    guess_until_locked(client)
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))

    assert sign_in(client, "operator", PASSWORD).status_code == 302


def test_a_successful_sign_in_forgets_the_earlier_failures(client, operator):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "operator", f"guess {n}")
    assert sign_in(client, "operator", PASSWORD).status_code == 302
    client.logout()

    assert sign_in(client, "operator", "one typo").status_code == 200  # not the limit yet


def test_the_administration_sign_in_is_throttled_too(client, administrator):
    answers = [
        client.post(reverse("admin:login"), {"username": "administrator", "password": f"guess {n}"}, REMOTE_ADDR=GUESSER).status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]

    assert answers[-1] == 429
    assert sign_in(client, "administrator", PASSWORD).status_code == 429


def test_axes_reset_lifts_the_lockout(client, operator):
    guess_until_locked(client)

    call_command("axes_reset", stdout=StringIO())

    assert sign_in(client, "operator", PASSWORD).status_code == 302


def test_ensure_admin_lifts_the_lockout_of_the_account_whose_password_it_sets(client, administrator, operator, tmp_path):
    guess_until_locked(client, "administrator")
    guess_until_locked(client, "operator")
    password_file = tmp_path / "password"
    password_file.write_text("a new long passphrase\n")
    out = StringIO()

    call_command("ensure_admin", username="administrator", password_file=password_file, stdout=out)

    assert "cleared the failed sign-ins of administrator" in out.getvalue()
    assert sign_in(client, "administrator", "a new long passphrase").status_code == 302
    client.logout()
    assert sign_in(client, "operator", PASSWORD).status_code == 429  # another account stays locked


def test_an_administrator_reads_the_failed_sign_ins_and_lifts_a_lockout_in_the_administration(client, operator, administrator):
    guess_until_locked(client)
    admin = Client()
    admin.force_login(administrator)
    changelist = reverse("admin:axes_accessattempt_changelist")

    listing = admin.get(changelist)
    lifted = admin.post(changelist, {"action": "delete_selected", "_selected_action": [AccessAttempt.objects.get().pk], "post": "yes"})

    assert listing.status_code == 200 and "operator" in listing.content.decode()
    assert lifted.status_code == 302 and not AccessAttempt.objects.exists()
    assert sign_in(client, "operator", PASSWORD).status_code == 302


def test_an_operator_has_no_access_to_the_failed_sign_ins(client_as, operator):
    assert client_as(operator).get(reverse("admin:axes_accessattempt_changelist")).status_code == 302  # to the admin's sign-in


@pytest.fixture
def username_limit(settings):
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 8
    return 8


def guess_from_many_addresses(client, failures: int, username: str = "operator") -> list[int]:
    """Fewer failures from each address than the pair's limit, as a guesser with many addresses."""
    per_address = settings.AXES_FAILURE_LIMIT - 1
    return [sign_in(client, username, f"guess {n}", address=f"198.51.100.{n // per_address + 1}").status_code for n in range(failures)]


def test_guessing_from_many_addresses_locks_the_username_out_from_everywhere(client, operator, viewer, username_limit):
    assert guess_from_many_addresses(client, username_limit) == [200] * (username_limit - 1) + [429]

    refused = sign_in(client, "operator", PASSWORD, address="192.0.2.99")  # the user, from an address never seen

    assert refused.status_code == 429
    assert "Too many failed sign-ins for operator from several addresses: try again in 15 minutes" in refused.content.decode()
    assert sign_in(client, "viewer", PASSWORD, address="192.0.2.99").status_code == 302  # other users are not affected


def test_the_username_lock_ends_with_its_cool_off_and_can_be_lifted(client, operator, username_limit):
    guess_from_many_addresses(client, username_limit)

    call_command("axes_reset_username", "operator", stdout=StringIO())

    assert sign_in(client, "operator", PASSWORD, address="192.0.2.99").status_code == 302


def test_a_zero_username_limit_keeps_only_the_per_address_lock(client, operator, settings):
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 0

    assert set(guess_from_many_addresses(client, 12)) == {200}
    assert sign_in(client, "operator", PASSWORD, address="192.0.2.99").status_code == 302


def test_signing_in_elsewhere_does_not_give_a_locked_guesser_a_fresh_start(client, operator):
    guess_until_locked(client)
    other = Client()

    assert sign_in(other, "operator", PASSWORD, address="192.0.2.20").status_code == 302
    assert sign_in(client, "operator", PASSWORD).status_code == 429  # the guesser's address stays locked


def test_an_all_digits_password_is_refused():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="entirely numeric"):
        validate_password("4820193746158273")
