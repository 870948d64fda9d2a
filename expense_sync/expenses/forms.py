"""The forms that register, add and correct expenses; amounts are read like the banks write them."""

import re
from datetime import datetime
from decimal import Decimal

from wtforms import DateTimeLocalField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from ..formatting import KINDS
from ..forms import Form
from ..models import CASH, CASH_NAME, bank_names
from ..parsing.amounts import parse_amount
from ..parsing.dates import COSTA_RICA
from .filters import CURRENCIES

REQUIRED = "Este campo es obligatorio."
CATEGORIES = (
    "Supermercado",
    "Restaurantes",
    "Transporte",
    "Combustible",
    "Servicios",
    "Salud",
    "Educación",
    "Hogar",
    "Ropa",
    "Entretenimiento",
    "Viajes",
    "Otros",
)
# Symbols and spaces people type around an amount ("₡ 12 500,00", "$19.99").
_AROUND_AMOUNT = "₡¢$ \u00a0"


_ONE_DECIMAL = re.compile(r"[0-9]{1,13}[.,][0-9]")
# "0,001" would read as one colón (a thousands group after a zero): no one writes that.
_ZERO_GROUP = re.compile(r"0[.,][0-9]{3}")


def read_amount(text: str | None) -> Decimal | None:
    """The exact amount typed, in es-CR ("12.500,50") or plain ("12500.50") writing; else None."""
    # es-CR formatting groups thousands with a no-break space (U+00A0 or U+202F).
    value = (text or "").replace("\u00a0", " ").replace("\u202f", " ").strip(_AROUND_AMOUNT)
    if _ZERO_GROUP.match(value):
        return None
    if _ONE_DECIMAL.fullmatch(value):  # "12,5": a person's shorthand, no bank's
        return Decimal(value.replace(",", "."))
    return parse_amount(value)


def _choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


def _payment_choices() -> list[SelectChoice]:
    # Called for each form: a bank registered after import is offered too.
    return _choices({CASH: CASH_NAME} | bank_names())


class NoteForm(Form):
    """What the user may add to or correct of any expense, also one read from mail."""

    merchant = StringField("Comercio o detalle", [Optional(), Length(max=255)])
    category = StringField("Categoría", [Optional(), Length(max=60)])
    note = TextAreaField(
        "Nota", [Optional(), Length(max=1000, message="Use como máximo 1000 caracteres.")]
    )


class ExpenseForm(NoteForm):
    """Every field of an expense the user states: typed by hand, or read from a mail by them."""

    occurred_at = DateTimeLocalField(
        "Fecha y hora", [InputRequired(REQUIRED)], format="%Y-%m-%dT%H:%M"
    )
    amount = StringField("Monto", [InputRequired(REQUIRED), Length(max=30)])
    currency = SelectField("Moneda", choices=_choices(CURRENCIES))
    kind = SelectField("Tipo", choices=_choices(KINDS))
    bank = SelectField("Medio de pago", choices=_payment_choices)

    def validate_amount(self, field) -> None:
        amount = read_amount(field.data)
        if amount is None:
            raise ValidationError("Escriba el monto con números, por ejemplo 12 500,00 o 12500.00.")
        if amount <= 0:
            raise ValidationError("El monto debe ser mayor que cero.")

    def validate_occurred_at(self, field) -> None:
        if field.data and field.data.year < 2000:
            raise ValidationError("Revise el año de la fecha.")

    @property
    def local_occurred_at(self) -> datetime:
        """The date and time typed, read as Costa Rica time."""
        return self.occurred_at.data.replace(tzinfo=COSTA_RICA)
