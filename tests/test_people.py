"""People: passwords, invitations, sign-in, throttling and browser sessions (both databases)."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from datetime import timedelta
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import text

from authserver.config import Settings
from authserver.errors import (
    InvalidArgument,
    PermissionDenied,
    SignInBusy,
    SignInFailed,
    SignInThrottled,
    Unauthenticated,
)
from authserver.records import UserRecord
from authserver.security.argon2 import PasswordHasher, SecretHasher
from authserver.store import Store
from authserver.usecases.people import NewSession, PeopleService
from authserver.usecases.users import UserService
from tests.support.helpers import PASSWORD, now

SOURCE = ipaddress.ip_address("203.0.113.9")


class CountingHasher(PasswordHasher):
    """Counts argon2 verifications (real ones, or against the dummy hash)."""

    verifications = 0

    def _check(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return super()._check(password_hash, password)


@pytest.fixture
def people(store: Store, settings: Settings, hasher: SecretHasher) -> PeopleService:
    return PeopleService(store, CountingHasher(settings), settings)


@pytest.fixture
def alice(store: Store, people: PeopleService) -> UserRecord:
    user = UserService(store).create(
        email="alice@example.com", display_name="Alice", role_names=["deploy"], now=now()
    )
    people.set_password(user_ref=user.id, password=PASSWORD, now=now())
    return user


def sign_in(
    people: PeopleService, email: str = "alice@example.com", password: str = PASSWORD
) -> NewSession:
    return people.sign_in_with_password(email=email, password=password, source=SOURCE, now=now())


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authserver.audit"]


def test_right_password_starts_a_session_for_the_user(
    people: PeopleService, alice: UserRecord
) -> None:
    started = sign_in(people)
    signed_in = people.current(session_id=started.session_id, now=now())
    assert signed_in is not None and signed_in.user.id == alice.id
    assert signed_in.session.method == "password"


def test_each_sign_in_gets_a_new_session_id(people: PeopleService, alice: UserRecord) -> None:
    assert sign_in(people).session_id != sign_in(people).session_id


def test_session_caller_acts_with_the_users_roles_unreduced(
    people: PeopleService, alice: UserRecord
) -> None:
    signed_in = people.current(session_id=sign_in(people).session_id, now=now())
    assert signed_in is not None
    caller = signed_in.caller()
    assert (caller.user_id, caller.effective_roles, caller.reduced, caller.via) == (
        alice.id,
        frozenset({"deploy"}),
        False,
        "session",
    )


def test_wrong_password_and_unknown_email_get_the_same_answer(
    people: PeopleService, alice: UserRecord
) -> None:
    with pytest.raises(SignInFailed) as wrong:
        sign_in(people, password=PASSWORD + "x")
    with pytest.raises(SignInFailed) as unknown:
        sign_in(people, email="nobody@example.com")
    assert str(wrong.value) == str(unknown.value)


def test_unknown_email_costs_the_same_argon2_work(people: PeopleService, alice: UserRecord) -> None:
    hasher = people.passwords
    assert isinstance(hasher, CountingHasher)
    with pytest.raises(SignInFailed):
        sign_in(people, password=PASSWORD + "x")
    known = hasher.verifications
    with pytest.raises(SignInFailed):
        sign_in(people, email="nobody@example.com")
    assert hasher.verifications - known == known == 1


def test_user_id_is_not_an_email_for_sign_in(people: PeopleService, alice: UserRecord) -> None:
    with pytest.raises(SignInFailed):
        sign_in(people, email=alice.id)


def test_disabled_user_cannot_sign_in(
    people: PeopleService, store: Store, alice: UserRecord
) -> None:
    UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())
    with pytest.raises(SignInFailed):
        sign_in(people)


def test_user_without_password_cannot_sign_in(people: PeopleService, store: Store) -> None:
    UserService(store).create(email="bob@example.com", display_name="", role_names=[], now=now())
    with pytest.raises(SignInFailed):
        sign_in(people, email="bob@example.com")


def test_password_sign_in_turned_off_is_refused(
    store: Store, settings: Settings, hasher: SecretHasher, alice: UserRecord
) -> None:
    off = Settings(database_url=settings.database_url, login_password=False)
    with pytest.raises(PermissionDenied):
        sign_in(PeopleService(store, PasswordHasher(off), off))


def test_no_invitations_while_password_sign_in_is_off(
    store: Store, settings: Settings, hasher: SecretHasher, alice: UserRecord
) -> None:
    off = Settings(database_url=settings.database_url, login_password=False)
    with pytest.raises(PermissionDenied, match="an invitation link would not work"):
        PeopleService(store, PasswordHasher(off), off).invite(
            user_ref=alice.id, ttl=timedelta(days=1), now=now()
        )


def test_weak_password_is_refused_and_the_old_one_kept(
    people: PeopleService, alice: UserRecord
) -> None:
    with pytest.raises(InvalidArgument, match="at least 15"):
        people.set_password(user_ref=alice.id, password="short", now=now())
    assert sign_in(people)


def test_disabling_the_user_ends_the_session(
    people: PeopleService, store: Store, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())
    assert people.current(session_id=session_id, now=now()) is None


def test_deleting_the_user_ends_the_session(
    people: PeopleService, store: Store, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    with store.database.engine.begin() as conn:
        conn.execute(text("DELETE FROM user_passwords WHERE user_id = :id"), {"id": alice.id})
        conn.execute(text("DELETE FROM browser_sessions WHERE user_id = :id"), {"id": alice.id})
        conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": alice.id})
    assert people.current(session_id=session_id, now=now()) is None


def test_role_change_reaches_the_session_at_once(
    people: PeopleService, store: Store, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    UserService(store).update(ref=alice.id, role_names=["billing:read"], disabled=None, now=now())
    signed_in = people.current(session_id=session_id, now=now())
    assert signed_in is not None and signed_in.caller().effective_roles == {"billing:read"}


def test_idle_session_expires(people: PeopleService, alice: UserRecord) -> None:
    session_id = sign_in(people).session_id
    later = now() + timedelta(seconds=people.settings.session_idle_timeout + 1)
    assert people.current(session_id=session_id, now=later) is None


def test_activity_keeps_the_session_alive_past_the_idle_timeout(
    people: PeopleService, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    idle = timedelta(seconds=people.settings.session_idle_timeout)
    assert people.current(session_id=session_id, now=now() + idle * 0.9) is not None
    assert people.current(session_id=session_id, now=now() + idle * 1.5) is not None


def test_session_ends_at_its_absolute_lifetime_despite_activity(
    people: PeopleService, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    step = timedelta(seconds=people.settings.session_idle_timeout / 2)
    moment = now()
    while moment < now() + timedelta(seconds=people.settings.session_max_age):
        moment += step
        people.current(session_id=session_id, now=moment)
    assert people.current(session_id=session_id, now=moment) is None


def test_sign_out_ends_only_that_session(people: PeopleService, alice: UserRecord) -> None:
    first, second = sign_in(people).session_id, sign_in(people).session_id
    people.sign_out(session_id=first)
    assert people.current(session_id=first, now=now()) is None
    assert people.current(session_id=second, now=now()) is not None


def test_sign_out_everywhere_ends_every_session_of_the_user(
    people: PeopleService, alice: UserRecord
) -> None:
    sessions = [sign_in(people).session_id for _ in range(2)]
    _, ended = people.sign_out_everywhere(user_ref="alice@example.com", now=now())
    assert ended == 2
    assert all(people.current(session_id=s, now=now()) is None for s in sessions)


def test_setting_a_password_ends_the_users_sessions(
    people: PeopleService, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    people.set_password(user_ref=alice.id, password="plum tractor river lamp", now=now())
    assert people.current(session_id=session_id, now=now()) is None


def test_made_up_session_ids_are_nobody(people: PeopleService, alice: UserRecord) -> None:
    assert people.current(session_id="ses_" + "A" * 43, now=now()) is None
    assert people.current(session_id="", now=now()) is None


def test_invite_lets_the_person_choose_a_password_and_signs_them_in(
    people: PeopleService, store: Store
) -> None:
    bob = UserService(store).create(
        email="bob@example.com", display_name="Bob", role_names=[], now=now()
    )
    link, _ = people.invite(user_ref="bob@example.com", ttl=timedelta(days=1), now=now())
    token = link.split("token=")[1]
    assert link.startswith(f"{people.settings.issuer}/ui/invite?token=inv_")
    started = people.accept_invite(token=token, password=PASSWORD, now=now())
    signed_in = people.current(session_id=started.session_id, now=now())
    assert signed_in is not None and signed_in.user.id == bob.id
    assert sign_in(people, email="bob@example.com")


def test_invite_works_once(people: PeopleService, alice: UserRecord) -> None:
    link, _ = people.invite(user_ref=alice.id, ttl=timedelta(days=1), now=now())
    token = link.split("token=")[1]
    people.accept_invite(token=token, password="plum tractor river lamp", now=now())
    with pytest.raises(Unauthenticated, match="used or has expired"):
        people.accept_invite(token=token, password="plum tractor river lamp", now=now())


def test_expired_invite_is_refused(people: PeopleService, alice: UserRecord) -> None:
    link, _ = people.invite(user_ref=alice.id, ttl=timedelta(hours=1), now=now())
    token = link.split("token=")[1]
    assert people.invited(token=token, now=now() + timedelta(hours=2)) is None
    with pytest.raises(Unauthenticated):
        people.accept_invite(token=token, password=PASSWORD, now=now() + timedelta(hours=2))


def test_invite_refusing_a_weak_password_stays_usable(
    people: PeopleService, alice: UserRecord
) -> None:
    link, _ = people.invite(user_ref=alice.id, ttl=timedelta(days=1), now=now())
    token = link.split("token=")[1]
    with pytest.raises(InvalidArgument):
        people.accept_invite(token=token, password="passwordpassword", now=now())
    assert people.invited(token=token, now=now()) is not None


def test_failures_are_throttled_per_email_known_or_not(
    store: Store, settings: Settings, hasher: SecretHasher, alice: UserRecord
) -> None:
    limited = Settings(database_url=settings.database_url, sign_in_failure_limit=2)
    people = PeopleService(store, PasswordHasher(limited), limited)
    sources = (ipaddress.ip_address(f"198.51.100.{n}") for n in range(1, 100))
    for email in ("alice@example.com", "nobody@example.com"):
        for _ in range(2):
            with pytest.raises(SignInFailed):
                people.sign_in_with_password(
                    email=email, password="wrong wrong wrong", source=next(sources), now=now()
                )
        with pytest.raises(SignInThrottled):
            people.sign_in_with_password(
                email=email, password="wrong wrong wrong", source=next(sources), now=now()
            )


def test_throttled_account_refuses_even_the_right_password(
    store: Store, settings: Settings, hasher: SecretHasher, alice: UserRecord
) -> None:
    limited = Settings(database_url=settings.database_url, sign_in_failure_limit=1)
    people = PeopleService(store, PasswordHasher(limited), limited)
    with pytest.raises(SignInFailed):
        sign_in(people, password="wrong wrong wrong")
    with pytest.raises(SignInThrottled):
        people.sign_in_with_password(
            email="alice@example.com",
            password=PASSWORD,
            source=ipaddress.ip_address("198.51.100.1"),
            now=now(),
        )


def test_failures_are_throttled_per_source(
    store: Store, settings: Settings, hasher: SecretHasher, alice: UserRecord
) -> None:
    limited = Settings(database_url=settings.database_url, sign_in_failure_limit=2)
    people = PeopleService(store, PasswordHasher(limited), limited)
    for number in range(2):
        with pytest.raises(SignInFailed):
            sign_in(people, email=f"guess{number}@example.com")
    with pytest.raises(SignInThrottled):
        sign_in(people)


def test_sign_in_is_audited_without_the_password_or_typed_email(
    people: PeopleService, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "authserver.audit")
    sign_in(people)
    with pytest.raises(SignInFailed):
        sign_in(people, email="typo@example.com")
    events = audit_events(caplog)
    assert [e["event"] for e in events[-2:]] == ["signed_in", "sign_in_failed"]
    assert events[-2]["user_id"] == alice.id and events[-2]["method"] == "password"
    assert events[-1]["reason"] == "unknown e-mail"
    assert "typo@" not in caplog.text


def test_invite_and_password_changes_are_audited(
    people: PeopleService, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "authserver.audit")
    people.invite(user_ref=alice.id, ttl=timedelta(days=1), now=now())
    people.set_password(user_ref=alice.id, password="plum tractor river lamp", now=now())
    people.sign_out_everywhere(user_ref=alice.id, now=now())
    events = [e["event"] for e in audit_events(caplog)]
    assert events[-3:] == ["invite_created", "password_set", "signed_out_everywhere"]


def test_guesses_sent_all_at_once_get_no_further_than_the_limit(
    people: PeopleService, alice: UserRecord
) -> None:
    """Counted before argon2: attempts in flight together cannot all pass the check."""
    from concurrent.futures import ThreadPoolExecutor

    limit = people.settings.sign_in_failure_limit

    def guess(number: int) -> str:
        try:
            sign_in(people, password=f"wrong guess number {number}")
        except SignInThrottled:
            return "throttled"
        except SignInFailed:
            return "tried"
        return "signed in"

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(guess, range(3 * limit)))
    assert outcomes.count("tried") == limit
    assert outcomes.count("throttled") == 2 * limit
    with pytest.raises(SignInThrottled):
        sign_in(people)  # the right password waits too, as for anyone past the limit


def test_a_successful_sign_in_is_not_counted_as_a_failure(
    people: PeopleService, alice: UserRecord
) -> None:
    for _ in range(people.settings.sign_in_failure_limit * 2):
        sign_in(people)


def test_choosing_a_password_on_an_invitation_ends_older_sessions(
    people: PeopleService, alice: UserRecord
) -> None:
    """Someone who knew the old password must not keep the session it opened."""
    stolen = sign_in(people).session_id
    link, _ = people.invite(user_ref=alice.id, ttl=timedelta(days=1), now=now())
    fresh = people.accept_invite(
        token=link.split("token=")[1], password=PASSWORD + "-new", now=now()
    )
    assert people.current(session_id=stolen, now=now()) is None
    assert people.current(session_id=fresh.session_id, now=now()) is not None


def test_enabling_a_user_again_does_not_bring_back_old_sessions(
    people: PeopleService, store: Store, alice: UserRecord
) -> None:
    session_id = sign_in(people).session_id
    UserService(store).update(ref=alice.id, role_names=None, disabled=True, now=now())
    UserService(store).update(ref=alice.id, role_names=None, disabled=False, now=now())
    assert people.current(session_id=session_id, now=now()) is None


def _invite(people: PeopleService, user: UserRecord) -> str:
    link, _ = people.invite(user_ref=user.id, ttl=timedelta(days=1), now=now())
    return link.split("token=")[1]


def test_redeeming_an_invitation_spends_the_users_older_invitations(
    people: PeopleService, alice: UserRecord
) -> None:
    """M1: an old link must not set the password again after a newer one was used."""
    old, new = _invite(people, alice), _invite(people, alice)
    people.accept_invite(token=new, password="plum tractor river lamp", now=now())
    assert people.invited(token=old, now=now()) is None


def test_setting_a_password_spends_the_users_open_invitations(
    people: PeopleService, alice: UserRecord
) -> None:
    token = _invite(people, alice)
    people.set_password(user_ref=alice.id, password="plum tractor river lamp", now=now())
    assert people.invited(token=token, now=now()) is None


def test_sign_out_everywhere_spends_the_users_open_invitations(
    people: PeopleService, alice: UserRecord
) -> None:
    token = _invite(people, alice)
    people.sign_out_everywhere(user_ref=alice.id, now=now())
    assert people.invited(token=token, now=now()) is None


def test_revoking_invitations_spends_them_and_says_how_many(
    people: PeopleService, alice: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = [_invite(people, alice), _invite(people, alice)]
    caplog.set_level(logging.INFO, logger="authserver.audit")
    _, spent = people.revoke_invites(user_ref=alice.email, now=now())
    assert spent == 2
    assert all(people.invited(token=t, now=now()) is None for t in tokens)
    assert [e["count"] for e in audit_events(caplog) if e["event"] == "invites_revoked"] == [2]


def test_pending_invitations_are_listed_without_spent_ones(
    people: PeopleService, alice: UserRecord
) -> None:
    _invite(people, alice)
    spent = _invite(people, alice)
    people.accept_invite(token=spent, password="plum tractor river lamp", now=now())
    _invite(people, alice)
    listed = people.pending_invites(user_ref=alice.email, now=now())
    assert [user.id for _, user in listed] == [alice.id]


# The process's cap on queued password checks, and what waiting for them holds -------


def test_sign_in_beyond_the_queued_checks_is_busy_without_argon2_or_counting(
    store: Store, settings: Settings, alice: Any
) -> None:
    limited = Settings(
        database_url=settings.database_url, max_queued_password_checks=1, sign_in_failure_limit=1
    )
    hasher = CountingHasher(limited)
    people = PeopleService(store, hasher, limited)
    with hasher.admitted():
        for _ in range(3):
            with pytest.raises(SignInBusy):
                sign_in(people, password="wrong wrong wrong")
    assert hasher.verifications == 0
    with pytest.raises(SignInFailed):  # not SignInThrottled: the busy answers counted nothing
        sign_in(people, password="wrong wrong wrong")


def test_password_checks_waiting_for_argon2_hold_no_worker_thread(
    people: PeopleService, alice: Any
) -> None:
    people.passwords.verify(None, "warm up the dummy hash")
    pool = people.passwords._pool
    gate = threading.Event()
    pool.submit(gate.wait)  # argon2's one thread is busy until the gate opens
    failed: list[type[Exception]] = []

    async def attempt() -> None:
        try:
            await people.sign_in_with_password_async(
                email="alice@example.com", password="wrong wrong wrong", source=SOURCE, now=now()
            )
        except SignInFailed as exc:
            failed.append(type(exc))

    async def main() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        async with anyio.create_task_group() as tasks:
            for _ in range(4):
                tasks.start_soon(attempt)
            with anyio.fail_after(10):
                while pool._work_queue.qsize() < 4:  # all four wait for argon2
                    await anyio.sleep(0.01)
                # Both worker threads are free for storage calls meanwhile.
                assert await anyio.to_thread.run_sync(lambda: "stored") == "stored"
            gate.set()

    try:
        anyio.run(main)
    finally:
        gate.set()
    assert failed == [SignInFailed] * 4
