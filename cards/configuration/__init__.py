"""Card configs as admins manage them: the SPEC §2 rules, admin forms, import/export as
JSON and per-config health over the request log. Uses `cards.protocol` and the models."""
