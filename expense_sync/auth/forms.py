"""The forms of people's accounts: sign in, register, choose or change a password."""

from wtforms import EmailField, PasswordField
from wtforms.validators import Email, InputRequired, Length, ValidationError

from ..forms import REQUIRED, Form
from .passwords import MAX_LENGTH, password_problem

VALID_EMAIL = "Escriba un correo válido, p. ej. nombre@ejemplo.cr."


class LoginForm(Form):
    email = EmailField("Correo electrónico", [InputRequired(REQUIRED), Length(max=254)])
    password = PasswordField("Contraseña", [InputRequired(REQUIRED), Length(max=MAX_LENGTH)])


class EmailForm(Form):
    # A pasted address often carries spaces around it; the lookup ignores them too.
    email = EmailField(
        "Correo electrónico",
        [InputRequired(REQUIRED), Email(VALID_EMAIL), Length(max=254)],
        filters=[lambda value: value.strip() if value else value],
    )


class NewPasswordForm(Form):
    """A new password typed twice and checked against the policy."""

    # Lengths are checked here, not with Length(): its maxlength attribute made the browser
    # cut a long paste short without a word, and the confirmation then "did not match".
    password = PasswordField("Contraseña", [InputRequired(REQUIRED)])
    confirm = PasswordField("Confirmar contraseña", [InputRequired(REQUIRED)])

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.owner_email = email

    def validate_password(self, field) -> None:
        email = getattr(self, "email", None)
        problem = password_problem(field.data, email.data if email else self.owner_email)
        if problem:
            raise ValidationError(problem)

    def validate_confirm(self, field) -> None:
        # A password already rejected says what is wrong; "no coinciden" would only distract.
        if not self.password.errors and field.data != self.password.data:
            raise ValidationError("Las contraseñas no coinciden: escriba la misma dos veces.")


class RegisterForm(NewPasswordForm):
    email = EmailForm.email


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField("Contraseña actual", [InputRequired(REQUIRED), Length(max=MAX_LENGTH)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.label.text = "Contraseña nueva"


class ConfirmPasswordForm(Form):
    """The user's password, asked again before something that cannot be undone."""

    password = PasswordField("Su contraseña", [InputRequired(REQUIRED), Length(max=MAX_LENGTH)])
