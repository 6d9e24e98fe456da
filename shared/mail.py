"""E-mail through the SMTP server of Quay's MAIL_* keys (usage-log export notices, notifications)."""
from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from shared.config import Config


class MailNotConfigured(ValueError):
    """MAIL_SERVER is not set in this process's config."""


def _send(config: Config, to: str, subject: str, text: str, html: str | None) -> None:
    if not config.mail_server:
        raise MailNotConfigured("this registry has no MAIL_SERVER configured")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.mail_default_sender
    message["To"] = to
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP(config.mail_server, config.mail_port, timeout=30) as smtp:
        if config.mail_use_tls:
            smtp.starttls()
        if config.mail_username:
            smtp.login(config.mail_username, config.mail_password or "")
        smtp.send_message(message)


async def send_mail(config: Config, to: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one message (smtplib blocks: it runs in a thread)."""
    await asyncio.to_thread(_send, config, to, subject, text, html)


def looks_like_address(value: str) -> bool:
    return "@" in value and not any(c in value for c in "\r\n <>,;")
