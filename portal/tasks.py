from __future__ import annotations

from celery import shared_task
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from portal import privacy
from portal.models import User

# The password-reset email's templates (the page's view names them too).
RESET_TEMPLATES = {
    "subject_template_name": "registration/password_reset_subject.txt",
    "email_template_name": "registration/password_reset_email.txt",
    "html_email_template_name": "registration/password_reset_email.html",
}


@shared_task(ignore_result=True)
def clear_expired_sessions() -> int:
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(ignore_result=True, acks_late=True, time_limit=60)
def send_password_reset(user_id: int, domain: str, use_https: bool) -> None:
    """The password-reset email, sent here rather than in the request, so that
    the page answers as fast for an unknown address as for a known one. The
    link's token is made now (valid from now, for PASSWORD_RESET_TIMEOUT)."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password() or not user.email:
        return
    context = {
        "email": user.email,
        "domain": domain,
        "site_name": domain,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    with translation.override("fr"):
        PasswordResetForm().send_mail(
            RESET_TEMPLATES["subject_template_name"],
            RESET_TEMPLATES["email_template_name"],
            context,
            None,
            user.email,
            html_email_template_name=RESET_TEMPLATES["html_email_template_name"],
        )


@shared_task(ignore_result=True)
def purge_contact_access_log() -> int:
    return privacy.purge_contact_accesses()
