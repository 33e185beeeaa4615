from django.apps import AppConfig


class DevSupportConfig(AppConfig):
    """Development and test support: the `lab` command that starts the built-in libvirt lab
    and registers it in the inventory. Not part of the wheel or the image."""

    name = "devsupport"
    verbose_name = "development support"
