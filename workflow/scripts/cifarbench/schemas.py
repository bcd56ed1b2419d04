"""The JSON-schema validator for the project's documents (config, metrics): Draft 2020-12, with
an `integer` that is an int. The draft also counts an integral float as an integer, so
`batch_size: 1e30` would pass its schema and fail far later, in training."""

import jsonschema


def _is_int(checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)
