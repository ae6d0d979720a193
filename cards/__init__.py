"""Customer Cards' card engine, one subpackage per concern; arrows point one way
(pyproject.toml `[tool.importlinter]`): protocol <- loading <- background <- live and
configuration <- integrator. Django's conventional modules (models, admin, tasks, urls,
management) stay here where autodiscovery finds them."""

__version__ = "0.1.0"
