"""WTForms forms; Flask-WTF adds the CSRF token to each."""

import gettext
import ipaddress
import re
from functools import cache
from pathlib import Path

from flask import current_app
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.fields import SelectChoice
from wtforms.i18n import messages_path
from wtforms.validators import (
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from .mailboxes import providers
from .models import bank_names

REQUIRED = "Este campo es obligatorio."
MAILBOX_ROOT = "su carpeta de buzones en el servidor"
IMAP_FIELDS = (
    "provider",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_user",
    "imap_password",
    "folder",
    "tls_fingerprint",
)
NO_PASSWORDS = (
    "Outlook, Hotmail y Microsoft 365 ya no aceptan contraseñas por IMAP: use "
    "«Conectar con Microsoft»."
)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class _Spanish:
    """WTForms' own Spanish catalogue, in our words where its wording is unclear."""

    OURS = {
        "Not a valid choice.": "Elija una de las opciones de la lista.",
        "Not a valid integer value.": "Escriba un número entero.",
    }

    def __init__(self) -> None:
        self._catalogue = gettext.translation("wtforms", messages_path(), ["es"])

    def gettext(self, string: str) -> str:
        return self.OURS.get(string) or self._catalogue.gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogue.ngettext(singular, plural, n)


@cache
def spanish() -> _Spanish:
    return _Spanish()


class Form(FlaskForm):
    """Every form's built-in messages (choices, numbers) in Spanish, as the rest of the UI."""

    class Meta:
        def get_translations(self, form):
            return spanish()


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _bank_choices() -> list[SelectChoice]:
    # Called for each form: a bank registered after import is offered too.
    return _choices(bank_names().items())


class AccountForm(Form):
    bank = SelectField("Banco", choices=_bank_choices)
    address = EmailField(
        "Dirección de correo",
        [
            InputRequired(REQUIRED),
            Email("Escriba un correo válido, p. ej. nombre@ejemplo.cr."),
            Length(max=254),
        ],
    )
    source_kind = SelectField(
        "Origen",
        choices=_choices(
            [
                ("imap", "Servidor IMAP"),
                ("mbox", "Archivo mbox"),
                ("maildir", "Carpeta Maildir"),
            ]
        ),
    )
    provider = SelectField(
        "Proveedor", choices=_choices(providers.CHOICES), default=providers.CUSTOM
    )
    imap_host = StringField("Servidor IMAP", [Optional(), Length(max=255)])
    imap_port = IntegerField(
        "Puerto",
        [Optional(), NumberRange(1, 65535, "Use un puerto entre 1 y 65535.")],
        default=993,
    )
    imap_security = SelectField(
        "Seguridad",
        choices=_choices(
            [
                ("ssl", "SSL/TLS"),
                ("starttls", "STARTTLS"),
                ("none", "Ninguna (no recomendado)"),
            ]
        ),
        default="ssl",
    )
    imap_user = StringField("Usuario", [Optional(), Length(max=255)])
    imap_password = PasswordField("Contraseña", [Optional(), Length(max=1024)])
    folder = StringField("Carpeta", [Optional(), Length(max=255)], default="INBOX")
    local_path = StringField("Ruta", [Optional(), Length(max=1024)])
    # Set by "Confiar en este certificado" after a probe showed the server's certificate.
    tls_fingerprint = HiddenField(
        "Certificado de confianza",
        [
            Optional(),
            Regexp(
                r"^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$",
                message="La huella del certificado no es válida.",
            ),
        ],
    )

    def __init__(self, *args, password_on_file: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.password_on_file = password_on_file

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        if self.source_kind.data == "imap":
            self.local_path.errors = []
            preset = providers.preset(self.provider.data)
            # A provider fills the server in, and its user is the address itself.
            required = [] if preset else [self.imap_host, self.imap_port, self.imap_user]
            if preset and not preset.passwords and not self.password_on_file:
                self.imap_password.errors = [NO_PASSWORDS]
            elif not self.password_on_file:
                required.append(self.imap_password)
        else:
            # The page hides and disables the IMAP fields, so the browser does not send them.
            for name in IMAP_FIELDS:
                self[name].errors = []
            required = [self.local_path]
        for field in required:
            if not field.data and not field.errors:
                field.errors = [REQUIRED]
        return not self.errors

    def settings(self) -> dict:
        """The validated data, a local path made absolute (the worker runs elsewhere)."""
        data = dict(self.data)
        if data["source_kind"] != "imap":
            data["local_path"] = str(local_path(data["local_path"]))
            return data
        preset = providers.preset(data["provider"])
        if preset and not (data["imap_host"] or "").strip():
            data |= {
                "imap_host": preset.host,
                "imap_port": preset.port,
                "imap_security": preset.security,
            }
        if not (data["imap_user"] or "").strip():
            data["imap_user"] = (data["address"] or "").strip().lower()
        data["tls_fingerprint"] = (data["tls_fingerprint"] or "").replace(":", "").lower()
        return data

    def validate_imap_host(self, field) -> None:
        if field.data and not is_hostname(field.data.strip()):
            raise ValidationError(
                "Escriba un nombre de servidor válido, p. ej. imap.gmail.com: "
                "cada parte entre puntos tiene como máximo 63 caracteres."
            )

    def validate_local_path(self, field) -> None:
        # Local sources could read any file the server can: confine them to one directory.
        if not field.data:
            return
        path = local_path(field.data)
        if path is None:
            raise ValidationError(f"La ruta debe estar dentro de {MAILBOX_ROOT}.")
        try:
            exists = path.exists()
        except OSError:  # a name longer than the file system allows
            exists = False
        if not exists:
            raise ValidationError(f"No existe «{field.data.strip()}» en {MAILBOX_ROOT}.")
        if self.source_kind.data == "mbox" and not path.is_file():
            raise ValidationError("Esa ruta es una carpeta: un archivo mbox es un solo archivo.")
        if self.source_kind.data == "maildir" and not (path / "cur").is_dir():
            raise ValidationError("Esa ruta no es una carpeta Maildir (con cur/, new/ y tmp/).")


def is_hostname(host: str) -> bool:
    """A name DNS can carry (labels of 1 to 63 characters, 253 in all) or an IP address."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        ascii_name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_name) <= 253 and all(_LABEL.fullmatch(part) for part in ascii_name.split("."))


def user_folder(root: str, user_id: int) -> Path:
    """A user's own folder of the mailbox root: local sources of one user never reach
    another's files."""
    return Path(root).resolve() / str(user_id)


def mailbox_root() -> Path:
    """The logged-in user's folder, the one their local paths are relative to."""
    return user_folder(current_app.config["LOCAL_MAILBOX_ROOT"], current_user.id)


def local_path(typed: str) -> Path | None:
    """The path a user typed, relative to the mailbox root; None when it leads outside it."""
    root = mailbox_root()
    try:
        path = (root / typed.strip()).resolve()
    except (OSError, ValueError):  # a NUL byte, a symlink loop
        return None
    return path if path.is_relative_to(root) else None


def shown_path(stored: str | None) -> str:
    """A stored local path as the user knows it: relative to the mailbox root."""
    if not stored:
        return ""
    path = Path(stored)
    return str(path.relative_to(mailbox_root())) if path.is_relative_to(mailbox_root()) else stored
