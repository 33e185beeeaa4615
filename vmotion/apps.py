from django.apps import AppConfig


class VmotionConfig(AppConfig):
    name = "vmotion"
    verbose_name = "vmotion"
