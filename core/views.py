from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .models import Preferences, time_zone_choices
from .time_zones import remember


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label="Time zone", choices=time_zone_choices, help_text="Pages show times in it, and schedules are entered in it")

    class Meta:
        model = Preferences
        fields = ["time_zone"]


def preferences(request: HttpRequest) -> HttpResponse:
    """Every signed-in user sets their own; the login requirement is the site-wide one."""
    current, _ = Preferences.objects.get_or_create(user=request.user)
    form = PreferencesForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        form.save()
        remember(request, form.cleaned_data["time_zone"])
        messages.info(request, f"Times now show in {form.cleaned_data['time_zone']}.")
        return redirect("preferences")
    return render(request, "preferences.html", {"form": form})
