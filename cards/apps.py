from django.apps import AppConfig


def _forget_agent_checks_on_permission_changes() -> None:
    """The remembered agent checks (cards.live.access) are forgotten whenever permissions,
    group memberships, groups or permissions change."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from cards.live.access import agent_checks_forget_on_change

    user = get_user_model()
    uid = "cards-agent-check"  # Django keys it with the sender: one connection each
    for through in (user.user_permissions.through, user.groups.through, Group.permissions.through):
        m2m_changed.connect(agent_checks_forget_on_change, sender=through, dispatch_uid=uid)
    for model in (Group, Permission):
        post_delete.connect(agent_checks_forget_on_change, sender=model, dispatch_uid=uid)
    post_save.connect(agent_checks_forget_on_change, sender=Permission, dispatch_uid=uid)


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, not only in workers (which import
        # them through autodiscovery): the embedded mode runs the load task's own function
        # (cards.background.dispatch), found by name.
        from django.conf import settings

        from cards import checks, tasks  # noqa: F401

        _forget_agent_checks_on_permission_changes()

        if not settings.REDIS_URL:
            # Embedded mode: SIGTERM ends the process through its exit hooks, which cancel
            # the queued in-process loads and release their claims.
            from cards.background.dispatch import install_sigterm_exit

            install_sigterm_exit()
