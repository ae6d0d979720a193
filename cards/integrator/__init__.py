"""Tools for integrators: the admin preview, the playground, the schema URL and the
built-in example card API (SPEC §1, §9, §10). May use every other package of `cards`."""
