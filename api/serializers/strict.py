"""Request bodies taken in the JSON types the schema gives them. DRF on its own reads 0 as "0"
for a text field, "true", "yes" and 1 as true, and "12" as 12: a body the schema refuses would
then be carried out as if it had been right."""

from collections.abc import Mapping

from rest_framework import serializers

NOT_TEXT = "Not a valid string."
NOT_A_NUMBER = "A valid number is required."

TEXT_FIELDS = (
    serializers.CharField, serializers.DateTimeField, serializers.DateField, serializers.TimeField, serializers.DurationField,
    serializers.UUIDField, serializers.SlugRelatedField,
)


def json_type_error(field: serializers.Field, value) -> str | None:
    """Why `value` is not of the JSON type `field` takes, in DRF's own words; None when it is
    (or is null, which the field itself judges)."""
    if value is None:
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else field.error_messages["invalid"]
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        return None if _is_integer(value) else field.error_messages["incorrect_type"].format(data_type=type(value).__name__)
    if isinstance(field, serializers.IntegerField):
        return None if _is_integer(value) else field.error_messages["invalid"]
    if isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else NOT_A_NUMBER
    if isinstance(field, (serializers.ListField, serializers.ManyRelatedField, serializers.MultipleChoiceField)):
        if not isinstance(value, list):
            return f'Expected a list of items but got type "{type(value).__name__}".'
        child = getattr(field, "child", None) or getattr(field, "child_relation", None)
        errors = [json_type_error(child, item) for item in value] if isinstance(child, serializers.Field) else []
        return next((error for error in errors if error), None)
    if isinstance(field, serializers.ChoiceField):
        kinds = {type(choice) for choice in field.choices}
        return None if type(value) in kinds else field.error_messages["invalid_choice"].format(input=value)
    if isinstance(field, TEXT_FIELDS):
        return None if isinstance(value, str) else NOT_TEXT
    return None


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StrictJsonTypes:
    """A serializer mixin: each writable field's value must be of its JSON type, or the whole
    body is a 400 naming every field that is not."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name, field in self.fields.items():
                if not field.read_only and name in data and (error := json_type_error(field, data[name])):
                    errors[name] = [error]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
