import pytest
from helpers import csrf_token

from expense_sync.extensions import db
from expense_sync.models import User

# Read by scripts, not people: anonymous callers get 401 rather than a login page.
MACHINE_ENDPOINTS = {"sync.stream", "sync.status_json", "metrics"}
PUBLIC = {"auth.login", "auth.register", "static", "health.healthz", "home"}


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


def test_register_rejects_duplicate_and_short_password(auth, client):
    auth.create()
    token = csrf_token(client, "/register")
    html = client.post(
        "/register",
        data={
            "email": "ana@example.cr",
            "password": "corta",
            "confirm": "corta",
            "csrf_token": token,
        },
    ).get_data(as_text=True)
    assert "Use al menos 10 caracteres." in html


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
