"""The password policy of OWASP ASVS 5.0: long enough, not guessable, no composition rules."""

MIN_LENGTH, MAX_LENGTH = 12, 1024
# zxcvbn scores guessability 0-4 against its bundled lists of common passwords, names and
# words, repeats and sequences; 3 resists about 10^10 guesses.
MIN_SCORE = 3


def password_problem(password: str, email: str = "") -> str | None:
    """What is wrong with a new password, in Spanish; None when it is good."""
    if len(password) < MIN_LENGTH:
        return (
            f"La contraseña es demasiado corta: tiene {len(password)} caracteres y "
            f"necesita al menos {MIN_LENGTH}."
        )
    if len(password) > MAX_LENGTH:
        return f"La contraseña es demasiado larga: use como máximo {MAX_LENGTH} caracteres."
    from zxcvbn import zxcvbn  # loads its word lists: only when a password is chosen

    if zxcvbn(password[:100], user_inputs=[email, *email.split("@")])["score"] < MIN_SCORE:
        return (
            "Esa contraseña es fácil de adivinar: es común, repite caracteres o se parece "
            "a su correo. Use una frase de varias palabras que solo usted conozca."
        )
    return None
