"""A user's API tokens are revoked when their password changes or they are deactivated:
whoever changes a password (the user, an administrator, `ensure_admin`) means the old
secrets to stop working, and a token must not keep a departed user's access."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from . import api_tokens

User = get_user_model()


@receiver(pre_save, sender=User)
def note_what_changes(sender, instance, update_fields=None, **kwargs) -> None:
    instance._revoke_tokens_because = ""
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # signing in writes last_login alone: no query for it
    before = User.objects.filter(pk=instance.pk).values("password", "is_active").first() if instance.pk else None
    if before is None:
        return
    if before["is_active"] and not instance.is_active:
        instance._revoke_tokens_because = "its user was deactivated"
    elif before["password"] != instance.password:
        instance._revoke_tokens_because = "its user's password changed"


@receiver(post_save, sender=User)
def revoke_tokens(sender, instance, created, **kwargs) -> None:
    because = getattr(instance, "_revoke_tokens_because", "")
    if because:
        api_tokens.revoke_all(instance, because)
