from pathlib import Path

from axes.utils import reset as reset_login_failures
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core.roles import Role


class Command(BaseCommand):
    help = "Create (or reset the password of) an administrator account, and lift its sign-in lockout."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True, type=Path)

    def handle(self, *args, username, password_file, **options):
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": True})
        user.set_password(password_file.read_text().strip())
        user.save()
        user.groups.add(Group.objects.get(name=Role.ADMINISTRATOR.group_name))
        self.stdout.write(f"{'created' if created else 'updated'} administrator {username}")
        # Setting the password is how an administrator who locked themselves out gets back in.
        if reset_login_failures(username=username):
            self.stdout.write(f"cleared the failed sign-ins of {username}: it may sign in at once")
