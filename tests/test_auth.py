import re

import pytest
from helpers import csrf_token
from smtp_server import SmtpServer

from expense_sync.extensions import db
from expense_sync.models import User

# Read by scripts, not people: anonymous callers get 401 rather than a login page.
MACHINE_ENDPOINTS = {"sync.stream", "sync.user_stream", "sync.status_json", "metrics"}
PUBLIC = {
    "auth.login",
    "auth.register",
    "auth.confirm",
    "auth.forgot",
    "auth.reset",
    "static",
    "health.healthz",
    "home",
    "favicon",
}


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def mailing(app, smtp):
    """The app sending its mail through a real SMTP server."""
    app.config.update(smtp.config())
    return smtp


GOOD = "una frase larga que nadie adivina"


def register(client, password, confirm=None, email="nuevo@example.cr"):
    confirm = password if confirm is None else confirm
    data = {"email": email, "password": password, "confirm": confirm}
    return client.post("/register", data=data | {"csrf_token": csrf_token(client, "/register")})


def field_error(html, name):
    match = re.search(rf'id="{name}-error">([^<]*)<', html)
    return match and match.group(1)


def without_tokens(html: str) -> str:
    return re.sub(
        r'(name="csrf-token" content=|name="csrf_token" type="hidden" value=|'
        r'"X-CSRFToken": )"[^"]+"',
        "",
        html,
    )


def test_registration_mails_a_link_that_creates_the_account(app, client, mailing):
    response = register(client, GOOD, email="Nuevo@Example.cr")
    assert response.status_code == 200 and 'id="check-mail"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None  # nothing until the link
    link = mailing.link("nuevo@example.cr")
    path = link.split("localhost", 1)[1]
    assert "nuevo" not in path  # the link carries the registration encrypted
    page = client.get(path).get_data(as_text=True)
    assert 'id="confirm-form"' in page and "nuevo@example.cr" in page
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None  # opening it creates nothing
    wrong = client.post(path, data={"password": "otra", "csrf_token": csrf_token(client, path)})
    assert "No es la contraseña que eligió" in wrong.get_data(as_text=True)
    response = client.post(path, data={"password": GOOD, "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and response.headers["Location"] == "/accounts/new"
    assert client.get("/accounts").status_code == 200  # logged in
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        assert user.email == "nuevo@example.cr"
        assert user.password_hash.startswith(("scrypt:", "argon2"))
        assert GOOD not in user.password_hash
    # The link creates one account, once.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/accounts")})
    again = client.get(link.split("localhost", 1)[1])
    assert again.headers["Location"] == "/login"


def test_registering_a_known_address_looks_the_same_and_mails_its_owner(app, auth, client, mailing):
    auth.create()
    known = register(client, GOOD, email="ana@example.cr").get_data(as_text=True)
    to_owner = mailing.next_message("ana@example.cr")
    assert "pero ya tiene una" in " ".join(to_owner.get_content().split())
    unknown = register(client, GOOD, email="otra@example.cr").get_data(as_text=True)
    mailing.next_message("otra@example.cr")
    assert without_tokens(known).replace("ana@", "x@") == without_tokens(unknown).replace(
        "otra@", "x@"
    )
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("corta", "La contraseña es demasiado corta: tiene 5 caracteres y necesita al menos 12."),
        ("a" * 12, "Esa contraseña es fácil de adivinar"),
        (" " * 12, "Esa contraseña es fácil de adivinar"),
        ("password1234", "Esa contraseña es fácil de adivinar"),
        ("nuevo@example.cr", "Esa contraseña es fácil de adivinar"),
        ("x" * 1500, "La contraseña es demasiado larga: use como máximo 1024 caracteres."),
    ],
)
def test_weak_passwords_are_refused_with_their_reason(app, client, password, error):
    html = register(client, password).get_data(as_text=True)
    assert field_error(html, "password").startswith(error.replace("ñ", "ñ"))
    assert field_error(html, "confirm") is None
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None


def test_password_error_is_not_the_hint(client):
    hint = re.search(r'id="password-help">([^<]*)<', client.get("/register").get_data(as_text=True))
    error = field_error(register(client, "corta").get_data(as_text=True), "password")
    assert hint and hint.group(1) not in error and error not in hint.group(1)


def test_a_long_paste_is_not_cut_by_the_page(client):
    page = client.get("/register").get_data(as_text=True)
    # A maxlength would cut the paste in the password box only, and then "no coinciden".
    assert not re.search(r'<input[^>]*id="(password|confirm)"[^>]*maxlength', page)


def test_mismatched_confirmation_is_reported_on_it(client):
    html = register(client, GOOD, confirm=GOOD + "x").get_data(as_text=True)
    assert field_error(html, "confirm") == (
        "Las contraseñas no coinciden: escriba la misma dos veces."
    )


def test_favicon_and_skip_link_are_on_every_page(auth, client):
    html = client.get("/login").get_data(as_text=True)
    assert 'rel="icon" href="/static/favicon.svg"' in html
    assert 'href="#contenido"' in html and '<main id="contenido"' in html
    assert client.get("/static/favicon.svg").status_code == 200
    assert client.get("/favicon.ico").headers["Location"].endswith("/static/favicon.ico")
    assert client.get("/static/favicon.ico").data.startswith(b"\x00\x00\x01\x00")


def test_login_and_wrong_password(auth, client):
    auth.create()
    response = auth.login(password="equivocada")
    assert "Correo o contraseña incorrectos." in response.get_data(as_text=True)
    assert client.get("/accounts").status_code == 302
    assert auth.login().status_code == 302
    assert client.get("/accounts").status_code == 200


def test_login_clears_previous_session(auth, client):
    auth.create()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session


def test_cookie_captured_before_logout_is_refused_after(app, auth, client):
    auth.create()
    auth.login()
    stolen = client.get_cookie("session").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/accounts")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_one_address_is_limited_whatever_the_account(auth, client):
    auth.create()
    codes = [auth.login(email=f"u{i}@example.cr", password="mala").status_code for i in range(11)]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    assert "Demasiados intentos" in auth.login().get_data(as_text=True)


def _rules(app, method):
    for rule in app.url_map.iter_rules():
        if method in rule.methods and rule.endpoint not in PUBLIC:
            yield rule.endpoint, _build(rule)


def _build(rule):
    path = rule.rule
    for arg in rule.arguments:
        path = path.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
    return path


def test_anonymous_requests_redirect_to_login(app, client):
    checked = 0
    for method in ("GET", "POST"):
        for endpoint, path in _rules(app, method):
            # CSRF runs before login for POSTs; send a valid token so login is what decides.
            data = {"csrf_token": csrf_token(client)} if method == "POST" else None
            response = client.open(path, method=method, data=data)
            checked += 1
            if endpoint in MACHINE_ENDPOINTS:
                assert response.status_code == 401, (endpoint, path)
                continue
            assert response.status_code == 302, (endpoint, path)
            assert "/login" in response.headers["Location"], (endpoint, path)
    assert checked >= 12


def test_csrf_missing_on_any_state_changing_route_gives_400(app, auth, client):
    auth.create()
    auth.login()
    posts = [path for _, path in _rules(app, "POST")] + ["/login", "/register"]
    assert len(posts) >= 5
    for path in posts:
        response = client.post(path, data={})
        assert response.status_code == 400, path
    htmx = client.post("/accounts/test", headers={"HX-Request": "true"}, data={})
    assert htmx.status_code == 400


def test_htmx_csrf_header_is_accepted(auth, client):
    auth.create()
    auth.login()
    token = csrf_token(client, "/accounts")
    response = client.post(
        "/accounts/test",
        headers={"HX-Request": "true", "X-CSRFToken": token},
        data={"source_kind": "imap"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil",
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d%0a/x",
        "/%20/evil.example",
        "///evil.example",
    ],
)
def test_login_never_redirects_off_site(auth, client, target):
    auth.create()
    token = csrf_token(client)
    response = client.post(
        f"/login?next={target}",
        data={
            "email": "ana@example.cr",
            "password": "contraseña-segura",
            "csrf_token": token,
        },
    )
    assert response.headers["Location"] == "/"


def test_login_goes_on_to_a_same_site_path(auth, client):
    auth.create()
    response = client.post(
        "/login?next=/expenses%3Fmonth%3D2025-03",
        data={
            "email": "ana@example.cr",
            "password": "contraseña-segura",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.headers["Location"] == "/expenses?month=2025-03"


def browser_at(app, address: str):
    """A test client that comes from its own IP address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def log_in(client, email="ana@example.cr", password="contraseña-segura"):
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)}
    )


def test_strangers_guessing_do_not_lock_the_owner_out(app, auth):
    auth.create()
    owner = browser_at(app, "10.0.0.1")
    assert log_in(owner).status_code == 302  # this browser now carries a device cookie
    owner.post("/logout", data={"csrf_token": csrf_token(owner, "/accounts")})
    # Ten wrong guesses from ten addresses, the key written the ways a lookup accepts.
    for i, typed in enumerate([" ana@example.cr", "ANA@example.cr\t", "ana@example.cr"] * 4):
        if i < 10:
            assert log_in(browser_at(app, f"10.0.1.{i}"), typed, "adivinanza").status_code == 401
    refused = log_in(browser_at(app, "10.0.2.1"))  # right password, unknown browser
    assert refused.status_code == 429
    assert "desde un navegador donde ya inició sesión" in refused.get_data(as_text=True)
    assert log_in(owner).status_code == 302  # the owner's own browser still gets in


def test_a_device_has_its_own_limit(app, auth):
    auth.create()
    device = browser_at(app, "10.0.0.1")
    assert log_in(device).status_code == 302
    device.post("/logout", data={"csrf_token": csrf_token(device, "/accounts")})
    stolen_cookie = device.get_cookie("device").value
    laptop = browser_at(app, "10.0.3.1")
    laptop.set_cookie("device", stolen_cookie)
    for _ in range(10):
        assert log_in(laptop, password="adivinanza").status_code == 401
    assert log_in(laptop).status_code == 429  # a copied cookie buys ten guesses, no more
    assert log_in(browser_at(app, "10.0.3.2")).status_code == 302  # the account is not locked


def test_logins_are_limited_with_the_limit_store_down(app, auth):
    auth.create()
    app.config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:1/0"  # nothing listens there
    from expense_sync.extensions import limiter

    limiter.init_app(app)
    stranger = browser_at(app, "10.0.4.1")
    codes = [log_in(stranger, password="adivinanza").status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]
    assert log_in(browser_at(app, "10.0.4.2")).status_code == 429  # the account, in memory
    assert "demasiados intentos" in log_in(stranger).get_data(as_text=True).lower()


def test_forgotten_password_by_mail(app, auth, client, mailing):
    auth.create()
    other_browser = app.test_client()
    assert log_in(other_browser).status_code == 302
    page = client.post(
        "/forgot", data={"email": " Ana@Example.cr ", "csrf_token": csrf_token(client, "/forgot")}
    )
    assert 'id="check-mail"' in page.get_data(as_text=True)
    path = mailing.link("ana@example.cr").split("localhost", 1)[1]
    form = client.get(path).get_data(as_text=True)
    assert 'id="password"' in form
    response = client.post(
        path, data={"password": GOOD, "confirm": GOOD, "csrf_token": csrf_token(client, path)}
    )
    assert response.status_code == 302 and client.get("/accounts").status_code == 200
    assert other_browser.get("/accounts").status_code == 302  # signed out everywhere else
    assert log_in(app.test_client(), password=GOOD).status_code == 302
    assert log_in(app.test_client()).status_code == 401  # the old password is gone
    used = client.get(path)
    assert used.status_code == 302 and used.headers["Location"] == "/forgot"


def test_forgot_says_the_same_for_unknown_addresses_and_mails_nobody(client, mailing):
    page = client.post(
        "/forgot", data={"email": "nadie@example.cr", "csrf_token": csrf_token(client, "/forgot")}
    )
    assert 'id="check-mail"' in page.get_data(as_text=True)
    assert mailing.inbox.empty()


def test_a_forged_or_stale_reset_link_is_refused(app, auth, client):
    user_id = auth.create()
    from expense_sync.auth.reset import reset_token

    with app.app_context():
        token = reset_token(db.session.get(User, user_id))
    assert client.get(f"/reset/{token[:-2]}xx").headers["Location"] == "/forgot"
    app.config["SECRET_KEY"] = "another-secret-key-for-this-test-only"
    assert client.get(f"/reset/{token}").headers["Location"] == "/forgot"


def test_a_large_body_is_refused_before_it_is_read(client):
    response = client.post("/login", data={"email": "a" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "demasiado grande" in response.get_data(as_text=True)
