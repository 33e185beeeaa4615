from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core.roles import Role


class Command(BaseCommand):
    help = "Create (or reset the password of) an administrator account."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password-file", required=True, type=Path)

    def handle(self, *args, username, password_file, **options):
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": True})
        user.set_password(password_file.read_text().strip())
        user.save()
        user.groups.add(Group.objects.get(name=Role.ADMINISTRATOR.group_name))
        self.stdout.write(f"{'created' if created else 'updated'} administrator {username}")
