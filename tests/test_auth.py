import re

import pytest
from helpers import csrf_token

from expense_sync.extensions import db
from expense_sync.models import User

# Read by scripts, not people: anonymous callers get 401 rather than a login page.
MACHINE_ENDPOINTS = {"sync.stream", "sync.status_json", "metrics"}
PUBLIC = {"auth.login", "auth.register", "static", "health.healthz", "home", "favicon"}


def test_register_logs_in_and_hashes_password(app, client):
    token = csrf_token(client, "/register")
    response = client.post(
        "/register",
        data={
            "email": "Nuevo@Example.cr",
            "password": "una-clave-larga",
            "confirm": "una-clave-larga",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert client.get("/accounts").status_code == 200
    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        assert user.email == "nuevo@example.cr"
        assert user.password_hash.startswith(("scrypt:", "argon2"))
        assert "una-clave-larga" not in user.password_hash


def register(client, password, confirm=None, email="nuevo@example.cr"):
    confirm = password if confirm is None else confirm
    data = {"email": email, "password": password, "confirm": confirm}
    return client.post("/register", data=data | {"csrf_token": csrf_token(client, "/register")})


def field_error(html, name):
    match = re.search(rf'id="{name}-error">([^<]*)<', html)
    return match and match.group(1)


def test_register_rejects_duplicate_email(auth, client):
    auth.create()
    html = register(client, "una-clave-larga", email="ana@example.cr").get_data(as_text=True)
    assert field_error(html, "email") == "Ya existe una cuenta con ese correo."


def test_short_password_error_is_not_the_hint(client):
    hint = re.search(r'id="password-help">([^<]*)<', client.get("/register").get_data(as_text=True))
    html = register(client, "corta").get_data(as_text=True)
    error = field_error(html, "password")
    assert error == "La contraseña es demasiado corta: tiene 5 caracteres y necesita al menos 10."
    assert hint and hint.group(1) not in error and error not in hint.group(1)
    assert field_error(html, "confirm") is None


def test_a_pasted_overlong_password_says_it_is_too_long(app, client):
    page = client.get("/register").get_data(as_text=True)
    # A maxlength would cut the paste in the password box only, and then "no coinciden".
    assert not re.search(r'<input[^>]*id="(password|confirm)"[^>]*maxlength', page)
    html = register(client, "x" * 1500).get_data(as_text=True)
    assert field_error(html, "password") == (
        "La contraseña es demasiado larga: use como máximo 1024 caracteres.")
    assert field_error(html, "confirm") is None
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None


def test_mismatched_confirmation_is_reported_on_it(client):
    html = register(client, "una-clave-larga", confirm="otra-clave-larga").get_data(as_text=True)
    assert field_error(html, "confirm") == (
        "Las contraseñas no coinciden: escriba la misma dos veces.")


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


def test_login_is_rate_limited(auth, client):
    auth.create()
    codes = [auth.login(password="mala-clave").status_code for _ in range(11)]
    assert codes[:10] == [200] * 10
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


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
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
