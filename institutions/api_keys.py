"""API keys: creation (the secret is returned once), revocation, authentication and scopes.

A key carries scopes per resource family, ``<family>:read`` or ``<family>:write`` (write implies
read). The API asks for a capability (the same names as ``ROLE_CAPABILITIES``); the family it
belongs to is worked out by :func:`api_scope_family` from the view, so endpoints added by any
app are covered by the shared base classes without per-endpoint code.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from .models import ROLE_CAPABILITIES, ApiKey, Institution, Role
from .shared_redis import redis_answered, redis_backing_off, redis_failed, shared_redis

SCOPE_FAMILIES: dict[str, str] = {
    "students": _("Students: records, bulk upserts, incremental sync"),
    "features": _("Feature schema"),
    "imports": _("Imports and jobs"),
    "predictions": _("Predictions, explanations and model versions (retrain, rescore)"),
    "interventions": _("Interventions, flags and caseload assignments"),
    "activity": _("LMS activity events and the features derived from them"),
    "webhooks": _("Webhook endpoints and their delivery log"),
    "courses": _("Courses, sections, terms, instructors and enrolments (the OneRoster roster)"),
}
ALL_SCOPES: tuple[str, ...] = tuple(f"{family}:{level}" for family in SCOPE_FAMILIES for level in ("read", "write"))

# Capabilities a key never has, whatever its scopes: people and credentials are managed by people.
KEY_FORBIDDEN_CAPABILITIES = frozenset({"manage_users", "manage_keys"})

# The family a capability belongs to when the view does not say more precisely.
CAPABILITY_FAMILY: dict[str, str] = {
    "view_students": "students",
    "edit_students": "students",
    "view_all_students": "students",
    "manage_data": "imports",
    "manage_models": "predictions",
    "score_applicants": "predictions",
    "view_notes": "interventions",
    "edit_interventions": "interventions",
    "assign_caseloads": "interventions",
    "work_caseload": "interventions",
    "view_confidential_notes": "interventions",
    "configure_interventions": "interventions",
    "manage_webhooks": "webhooks",
}
# Models whose family differs from their capability's (the schema is edited with manage_data).
MODEL_FAMILY: dict[str, str] = {
    "students.featuredefinition": "features",
    "students.activityevent": "activity",
    "students.importupload": "imports",
    "institutions.job": "imports",
    "institutions.webhookendpoint": "webhooks",
    "institutions.webhookdelivery": "webhooks",
    "courses.rosterimport": "imports",
}
# Apps whose every endpoint belongs to one family.
APP_FAMILY: dict[str, str] = {"predictions": "predictions", "interventions": "interventions", "courses": "courses"}

KEY_PREFIX = "dpk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidScopes(ValueError):
    pass


def api_scope_family(view, capability: str) -> str | None:
    """The resource family a request to ``view`` needing ``capability`` falls under.

    Order: the view's explicit ``api_scope``; its model; its app (predictions, interventions);
    the capability; otherwise None (only reads of harmless institution-level data).
    """
    explicit = getattr(view, "api_scope", None)
    if explicit:
        return explicit
    model = getattr(view, "model", None)
    if model is not None:
        family = MODEL_FAMILY.get(model._meta.label_lower)
        if family:
            return family
        app = model._meta.app_label
    else:
        app = type(view).__module__.split(".", 1)[0]
    return APP_FAMILY.get(app) or CAPABILITY_FAMILY.get(capability)


def api_key_allows(api_key: ApiKey, *, capability: str, write: bool, family: str | None) -> bool:
    if not api_key.is_active or capability in KEY_FORBIDDEN_CAPABILITIES:
        return False
    if capability not in ROLE_CAPABILITIES[Role.ADMIN]:
        return False
    scopes = set(api_key.scopes or ())
    if family is None:
        family = CAPABILITY_FAMILY.get(capability)
    if family is None:
        # Institution-level reads (name, time zone, aggregates) need some read scope; writes a family.
        return not write and bool(scopes)
    if f"{family}:write" in scopes:
        return True
    return not write and f"{family}:read" in scopes


def clean_scopes(scopes) -> list[str]:
    if not isinstance(scopes, list | tuple) or not all(isinstance(scope, str) for scope in scopes):
        raise InvalidScopes("scopes must be a list of strings such as 'students:read'")
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise InvalidScopes(f"unknown scopes: {', '.join(unknown)}; valid: {', '.join(ALL_SCOPES)}")
    if not scopes:
        raise InvalidScopes("choose at least one scope")
    return [scope for scope in ALL_SCOPES if scope in set(scopes)]


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


@transaction.atomic
def api_key_create(
    *, institution: Institution, name: str, scopes, created_by=None, expires_at: datetime | None = None,
    rate_per_minute: int = 600,
) -> tuple[ApiKey, str]:
    """Create a key; returns ``(api_key, raw_key)``. The raw key is never stored or shown again."""
    scopes = clean_scopes(scopes)
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name saying which system uses it")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("the expiry must be in the future")
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{institution.pk}_{prefix}_{secrets.token_urlsafe(32)}"
    service_user = get_user_model()(
        username=f"apikey-{institution.pk}-{prefix}", first_name="API key", last_name=name[:150], is_active=True
    )
    service_user.set_unusable_password()
    service_user.save()
    api_key = ApiKey.objects.for_institution(institution).create(
        name=name, prefix=prefix, key_hash=_hash(raw_key), scopes=scopes, service_user=service_user,
        created_by=created_by, expires_at=expires_at, rate_per_minute=rate_per_minute,
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, institution: Institution, api_key: ApiKey) -> ApiKey:
    if api_key.institution_id != institution.pk:
        raise ValueError("key belongs to another institution")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
        get_user_model().objects.filter(pk=api_key.service_user_id).update(is_active=False)
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``, or None. Touches ``last_used_at`` at most once a minute."""
    parts = raw_key.split("_", 3)
    if len(parts) != 4 or parts[0] != KEY_PREFIX or not parts[1].isdigit():
        return None
    institution_id, prefix = int(parts[1]), parts[2]
    key_hash = _hash(raw_key)
    api_key, counted = _recent_keys.get(institution_id, prefix, key_hash)
    if api_key is None:
        generation = _recent_keys.generation()  # read before the row: a change meanwhile is seen next time
        api_key = _api_key_with_institution_and_user(institution_id=institution_id, prefix=prefix)
        if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash):
            return None
        _recent_keys.remember(api_key, generation)
        api_key = _recent_keys.copy(api_key)
    if counted is not None:
        api_key.counted_window = counted  # the rate-limit count this request already added
    if not api_key.is_active or not api_key.service_user.is_active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        _recent_keys.touched(api_key)
    return api_key


RATE_WINDOW_SECONDS = 60


def rate_window(now: float) -> int:
    """The number of the fixed one-minute window a request made at ``now`` (epoch seconds) counts in."""
    return int(now // RATE_WINDOW_SECONDS)


def rate_counter_name(api_key: ApiKey, window: int) -> str:
    """The cache key counting ``api_key``'s requests in ``window``. The prefix is random per key,
    so counts never carry over to a re-used database id."""
    return f"throttle:apikey:{api_key.pk}:{api_key.prefix}:{window}"


class _RecentKeys:
    """Keys this web process authenticated, reused while nothing about any key has changed.

    Reading a key with its institution and service user was a third of a student detail GET's
    CPU (database and Python). Every web process keeps the keys it authenticated, each with the
    value of a change counter in Redis (``REDIS_URL``) read before the row was. Any save or
    delete of a key, an institution or a user bumps the counter once its transaction commits
    (and empties this process's copy at once), so a revoked, expired-by-edit, re-scoped or
    moved key is read afresh by every process on its next request: one Redis ``GET`` instead of
    the database read. The counter starts from a random value whenever Redis has none (first
    use, or a restart lost it), and a missing counter vouches for nothing. Expiry by time is
    checked on every request. Without Redis (no REDIS_URL: there is no shared counter to trust)
    nothing is kept. Each request gets its own copies of the objects, so nothing one request
    sets on them reaches another.
    """

    COUNTER = "apikey-changes"
    # Kept at most this long even if the counter says nothing changed: a change written without
    # Django's signals (raw SQL, a migration) or a bump lost to a Redis outage is seen within it.
    MAX_AGE_SECONDS = 60.0

    def __init__(self):
        self._entries: dict[tuple[int, str], tuple[int, float, ApiKey]] = {}

    def generation(self) -> int | None:
        shared = shared_redis()
        if shared is None or redis_backing_off():
            return None
        client, make_key = shared
        counter = make_key(self.COUNTER)
        try:
            value = client.get(counter)
            if value is None:
                # First use, or Redis lost it (a restart): start from a random value, so that no
                # process takes the new count for the one it kept from before.
                client.set(counter, secrets.randbelow(1 << 62), nx=True)
                value = client.get(counter)
            value = int(value)
        except RedisError as exc:
            redis_failed(exc)
            return None
        except (TypeError, ValueError):
            return None
        redis_answered()
        return value

    def get(self, institution_id: int, prefix: str, key_hash: str) -> tuple[ApiKey | None, tuple | None]:
        """``(the kept key or None, (rate window, count) or None)``: the key if the secret matches
        and nothing changed since it was read.

        The counter is read together with the key's rate-limit increment, in one round trip (the
        secret has matched, so the request is the key holder's to count); the throttle takes the
        count from the key's ``counted_window`` instead of counting again.
        """
        entry = self._entries.get((institution_id, prefix))
        if entry is None or not hmac.compare_digest(entry[2].key_hash, key_hash):
            return None, None
        shared = shared_redis()
        if shared is None or redis_backing_off():
            # Redis down: nothing vouches that the key is unchanged, so it is read afresh (and
            # forgotten, so that a change made during the outage is never missed afterwards).
            self._entries.pop((institution_id, prefix), None)
            return None, None
        client, make_key = shared
        window = rate_window(time.time())
        counter_key = make_key(rate_counter_name(entry[2], window))
        try:
            pipeline = client.pipeline(transaction=False)
            pipeline.get(make_key(self.COUNTER))
            pipeline.incr(counter_key)
            generation, count = pipeline.execute()
            count = int(count)
            generation = None if generation is None else int(generation)
            if count == 1:
                client.expire(counter_key, 2 * RATE_WINDOW_SECONDS)
        except RedisError as exc:
            redis_failed(exc)
            self._entries.pop((institution_id, prefix), None)
            return None, None
        except ValueError:
            return None, None
        redis_answered()
        if generation is None or generation != entry[0] or time.monotonic() - entry[1] > self.MAX_AGE_SECONDS:
            self._entries.pop((institution_id, prefix), None)
            return None, (window, count)
        return self.copy(entry[2]), (window, count)

    def remember(self, api_key: ApiKey, generation: int | None) -> None:
        if generation is not None:
            self._entries[(api_key.institution_id, api_key.prefix)] = (generation, time.monotonic(), api_key)

    def touched(self, api_key: ApiKey) -> None:
        entry = self._entries.get((api_key.institution_id, api_key.prefix))
        if entry is not None:
            entry[2].last_used_at = api_key.last_used_at

    @staticmethod
    def copy(api_key: ApiKey) -> ApiKey:
        copied = copy.copy(api_key)
        ApiKey._meta.get_field("institution").set_cached_value(copied, copy.copy(api_key.institution))
        ApiKey._meta.get_field("service_user").set_cached_value(copied, copy.copy(api_key.service_user))
        return copied

    def changed(self, **_kwargs) -> None:
        """Signal receiver: something a key depends on was saved or deleted."""
        self._entries.clear()
        transaction.on_commit(self._bump, robust=True)

    def _bump(self) -> None:
        self._entries.clear()
        shared = shared_redis()
        if shared is not None and not redis_backing_off():
            client, make_key = shared
            counter = make_key(self.COUNTER)
            pipeline = client.pipeline(transaction=False)
            pipeline.set(counter, secrets.randbelow(1 << 62), nx=True)  # see generation()
            pipeline.incr(counter)
            try:
                pipeline.execute()
            except RedisError as exc:
                # The bump is lost: other processes forget kept keys whenever they fail to reach
                # Redis, and keep none longer than MAX_AGE_SECONDS anyway.
                redis_failed(exc)


_recent_keys = _RecentKeys()


def forget_kept_keys_on_changes() -> None:
    """Connect the kept keys to every change of a key, an institution or a user (apps.ready)."""
    for model in (ApiKey, Institution, get_user_model()):
        label = model._meta.label
        post_save.connect(_recent_keys.changed, sender=model, dispatch_uid=f"api-key-cache-save-{label}")
        post_delete.connect(_recent_keys.changed, sender=model, dispatch_uid=f"api-key-cache-delete-{label}")


def _api_key_with_institution_and_user(*, institution_id: int, prefix: str) -> ApiKey | None:
    # Resolving the credential is what establishes the scope, so it reads across institutions
    # on purpose (like access_membership), through the (institution, prefix) unique index.
    try:
        return ApiKey.objects.unscoped().select_related("institution", "service_user").get(
            institution_id=institution_id, prefix=prefix
        )
    except ApiKey.DoesNotExist:
        return None
