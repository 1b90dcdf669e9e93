"""API tokens from the server's shell: ``manage.py api_token create|list|revoke``.

    manage.py api_token create --user alice --name "CRM sync" --scope send --scope manage-recipients --expires 90d
    manage.py api_token list [--user alice] [--all]
    manage.py api_token revoke PREFIX_OR_ID

``create`` prints the token once (only its hash is stored). Creation and revocation are audited,
with the operator (the OS user running the command) as the actor.
"""

from __future__ import annotations

import getpass
import re
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import ApiToken, TokenScope, User
from accounts.selectors import api_tokens_active
from accounts.services import api_token_create, api_token_revoke

_DURATION = re.compile(r"(\d+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(value: str, *, now: datetime) -> datetime | None:
    """``90d``, ``12h``, ``2w``, a date ``YYYY-MM-DD`` (end of that day) or ``never``."""
    value = value.strip().lower()
    if value in {"", "never"}:
        return None
    match = _DURATION.fullmatch(value)
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(f"--expires {value!r}: give e.g. 90d, 12h, 2w, 2027-01-31 or never.") from None
    return timezone.make_aware(datetime.combine(day, time.max))


def _operator() -> str:
    try:
        return f"manage.py api_token ({getpass.getuser()})"
    except Exception:  # no login name in a container: still say it was the shell
        return "manage.py api_token"


class Command(BaseCommand):
    help = "Create (printed once), list and revoke API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="command", required=True)
        create = sub.add_parser("create", help="Create a token and print it once")
        create.add_argument("--user", required=True, help="Username the token acts as")
        create.add_argument("--name", default="", help="What uses it (default: 'created with manage.py')")
        create.add_argument(
            "--scope",
            action="append",
            required=True,
            choices=TokenScope.values,
            help="Repeat for several: read (read-only), send, manage-recipients, manage-settings",
        )
        create.add_argument("--expires", default="never", help="90d, 12h, 2w, YYYY-MM-DD or never (default)")
        listing = sub.add_parser("list", help="List tokens (never their secrets)")
        listing.add_argument("--user", help="Only this user's")
        listing.add_argument("--all", action="store_true", help="Include revoked and expired tokens")
        revoke = sub.add_parser("revoke", help="Revoke a token")
        revoke.add_argument("token", help="The token's id or its prefix (the part after smsp_)")

    def handle(self, *args: object, **options: object) -> None:
        getattr(self, f"_{options['command']}")(options)

    def _user(self, username: object) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        return user

    def _create(self, options: dict) -> None:
        user = self._user(options["user"])
        try:
            token, raw = api_token_create(
                actor=_operator(),
                user=user,
                name=options["name"] or "created with manage.py",
                scopes=options["scope"],
                expires_at=parse_expiry(options["expires"], now=timezone.now()),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(raw)
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "never expires"
        self.stderr.write(
            f"Token {token.pk} for {user.username}, scopes {' '.join(token.scopes)}, {expiry}. "
            "Store it now: it is not shown again."
        )

    def _list(self, options: dict) -> None:
        now = timezone.now()
        tokens = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
        if options.get("user"):
            tokens = tokens.filter(user=self._user(options["user"]))
        if not options.get("all"):
            tokens = tokens.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        for t in tokens:
            state = "revoked" if t.revoked_at else ("expired" if t.expires_at and t.expires_at <= now else "active")
            expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            self.stdout.write(
                f"{t.pk}\tsmsp_{t.prefix}_…\t{t.user.username}\t{t.name}\t{','.join(t.scopes)}\t"
                f"expires {expires}\tlast used {used}\t{state}"
            )

    def _revoke(self, options: dict) -> None:
        ref = str(options["token"]).removeprefix("smsp_").split("_", 1)[0]
        token = ApiToken.objects.select_related("user").filter(prefix=ref).first()
        if token is None and ref.isdigit():
            token = ApiToken.objects.select_related("user").filter(pk=int(ref)).first()
        if token is None:
            raise CommandError(f"No token {options['token']!r}.")
        if token.revoked_at is not None:
            self.stdout.write(f"Token {token.pk} was already revoked on {token.revoked_at:%Y-%m-%d %H:%M}.")
            return
        api_token_revoke(actor=_operator(), token=token)
        active = api_tokens_active(user=token.user).count()
        self.stdout.write(f"Token {token.pk} ({token.name}) of {token.user.username} revoked; {active} active left.")
