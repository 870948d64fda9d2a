"""WTForms forms; Flask-WTF adds the CSRF token to each."""

from pathlib import Path

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import (
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from .models import BANKS

REQUIRED = "Este campo es obligatorio."


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    email = EmailField("Correo electrónico", [InputRequired(REQUIRED), Length(max=254)])
    password = PasswordField("Contraseña", [InputRequired(REQUIRED), Length(max=1024)])


class RegisterForm(FlaskForm):
    email = EmailField(
        "Correo electrónico",
        [InputRequired(REQUIRED), Email("Correo electrónico inválido."), Length(max=254)],
    )
    password = PasswordField(
        "Contraseña",
        [InputRequired(REQUIRED), Length(10, 1024, "Use al menos 10 caracteres.")],
    )
    confirm = PasswordField(
        "Confirmar contraseña",
        [InputRequired(REQUIRED), EqualTo("password", "Las contraseñas no coinciden.")],
    )


class AccountForm(FlaskForm):
    bank = SelectField("Banco", choices=_choices(BANKS.items()))
    address = EmailField(
        "Dirección de correo",
        [InputRequired(REQUIRED), Email("Correo electrónico inválido."), Length(max=254)],
    )
    source_kind = SelectField(
        "Origen",
        choices=_choices([
            ("imap", "Servidor IMAP"), ("mbox", "Archivo mbox"), ("maildir", "Carpeta Maildir"),
        ]),
    )
    imap_host = StringField("Servidor IMAP", [Optional(), Length(max=255)])
    imap_port = IntegerField(
        "Puerto", [Optional(), NumberRange(1, 65535, "Puerto inválido.")], default=993
    )
    imap_security = SelectField(
        "Seguridad",
        choices=_choices([
            ("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "Ninguna (no recomendado)"),
        ]),
    )
    imap_user = StringField("Usuario", [Optional(), Length(max=255)])
    imap_password = PasswordField("Contraseña", [Optional(), Length(max=1024)])
    folder = StringField("Carpeta", [Optional(), Length(max=255)], default="INBOX")
    local_path = StringField("Ruta", [Optional(), Length(max=1024)])

    def __init__(self, *args, password_on_file: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.password_on_file = password_on_file

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.source_kind.data == "imap":
            for field in (self.imap_host, self.imap_port, self.imap_user):
                if not field.data:
                    field.errors.append(REQUIRED)
                    ok = False
            if not self.imap_password.data and not self.password_on_file:
                self.imap_password.errors.append(REQUIRED)
                ok = False
        elif not self.local_path.data:
            self.local_path.errors.append(REQUIRED)
            ok = False
        return ok

    def validate_local_path(self, field) -> None:
        # Local sources could read any file the server can: confine them to one directory.
        if self.source_kind.data == "imap" or not field.data:
            return
        root = Path(current_app.config["LOCAL_MAILBOX_ROOT"]).resolve()
        path = Path(field.data).resolve()
        if not path.is_relative_to(root):
            raise ValidationError(f"La ruta debe estar dentro de {root}.")
        if not path.exists():
            raise ValidationError("La ruta no existe.")
