from allauth.account import apps as allauth_account_apps
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import receivers  # noqa: F401


class SignInConfig(allauth_account_apps.AccountConfig):
    """django-allauth's account app, which the admin also called "Accounts": one Accounts section is ours.

    Only the name changes; the app label (``account``) and its tables stay as they are.
    """

    default = False
    verbose_name = "Sign-in email addresses"
