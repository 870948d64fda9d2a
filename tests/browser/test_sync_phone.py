"""The sync pages on a 390×844 phone: nothing sticks out of the screen, nothing is out of reach."""

from playwright.sync_api import expect
from stack import log_in, wait_until

PHONE = {"width": 390, "height": 844}
LONG_ADDRESS = "notificaciones.tarjeta.principal.de.la.familia@correo-empresarial.example.cr"

# Every visible element that reaches past the viewport or past an ancestor that clips it,
# except inside a container that scrolls sideways on purpose (overflow-x auto or scroll).
OVERFLOWING = """() => {
  const width = window.innerWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width) {
    problems.push("page scrolls sideways: " + document.documentElement.scrollWidth);
  }
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    " «" + (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40) + "»";
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    // Nothing drawn (no box, hidden, or 1 px like the visually hidden skip link).
    if (box.width <= 1 || box.height <= 1 || !el.checkVisibility()) continue;
    let scrolls = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll") { scrolls = true; break; }
      if (overflow !== "visible") {
        const clip = up.getBoundingClientRect();
        if (box.right > clip.right + 1 || box.left < clip.left - 1) {
          problems.push(name(el) + " cut off by " + name(up));
        }
      }
    }
    if (!scrolls && (box.right > width + 0.5 || box.left < -0.5)) {
      problems.push(name(el) + " right=" + box.right);
    }
  }
  return problems;
}"""

# Buttons and links styled as buttons keep their label on one line; the figures under the
# bar never touch each other ("0 erroressegundo").
CRAMPED = """() => {
  const problems = [];
  const widget = document.getElementById("sync-widget");
  for (const el of widget.querySelectorAll("button, a.rounded-lg")) {
    if (el.checkVisibility() && el.getBoundingClientRect().height > 44) {
      problems.push("two-line button: " + el.textContent.trim());
    }
  }
  const figures = ["sync-detected", "sync-errors", "sync-time-remaining"]
    .map((id) => document.getElementById(id))
    .filter((el) => el && el.checkVisibility() && el.getBoundingClientRect().width)
    .map((el) => el.id === "sync-time-remaining" ? el : el.parentElement);
  figures.forEach((a, i) => figures.slice(i + 1).forEach((b) => {
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const apart = p.right <= q.left || q.right <= p.left || p.bottom <= q.top || q.bottom <= p.top;
    if (!apart) problems.push("touching: " + a.textContent.trim() + " / " + b.textContent.trim());
  }));
  return problems;
}"""


def fits(page, path, *, widget=False) -> None:
    page.screenshot(path=str(path), full_page=True)
    problems = page.evaluate(OVERFLOWING) + (page.evaluate(CRAMPED) if widget else [])
    assert problems == [], f"{path.name}: {problems}"


def test_widget_history_and_details_fit_a_phone(browser, live, tmp_path):
    email = live.new_user(8000)
    # A second account whose folder is no Maildir: it fails with a message naming a long path.
    broken = live.workdir / f"{email}-sin-maildir" / "exportacion-de-correo-del-banco-2024"
    broken.mkdir(parents=True)
    live.flask(
        "add-account",
        "--user",
        email,
        "--bank",
        "promerica",
        "--address",
        LONG_ADDRESS,
        "--maildir",
        str(broken),
    )
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live, email)
    fits(page, tmp_path / "widget-idle.png", widget=True)

    page.click("#sync-start")
    page.wait_for_selector("#sync-progress[data-status=running]", timeout=30000)
    fits(page, tmp_path / "widget-starting.png", widget=True)
    wait_until(
        page,
        "Number(document.getElementById('sync-progress').dataset.processed) > 0"
        " || document.getElementById('sync-progress').dataset.status !== 'running'",
    )
    assert page.get_attribute("#sync-progress", "data-status") == "running"
    fits(page, tmp_path / "widget-running.png", widget=True)
    label = page.locator(f"#sync-accounts p[title='{LONG_ADDRESS}']")
    assert label.evaluate("e => e.scrollWidth > e.clientWidth")  # shortened by an ellipsis
    wait_until(
        page, "document.getElementById('sync-progress').dataset.status === 'failed'", timeout=120
    )
    expect(page.locator("#sync-failed-accounts")).to_have_text("1 cuenta falló")
    expect(page.locator("#sync-time-remaining")).to_contain_text("Terminó hace")
    fits(page, tmp_path / "widget-finished.png", widget=True)

    page.click("#sync-widget a:has-text('Ver detalles') >> nth=-1")
    page.wait_for_selector("#sync-expenses")
    fits(page, tmp_path / "detail.png")
    account = page.locator("#sync-detail-accounts tbody tr").first
    for label_text in ("Gastos detectados", "Errores"):
        expect(account.get_by_text(label_text, exact=True)).to_be_visible()
    amount = page.locator("#sync-expenses tbody tr").first.locator("td").last
    amount.scroll_into_view_if_needed()
    expect(amount).to_be_in_viewport(ratio=1)

    page.goto(live.url + "/sync_sessions")
    fits(page, tmp_path / "history.png")
    first = page.locator("#sync-history tbody tr").first
    for label_text in ("Gastos detectados", "Errores"):
        expect(first.get_by_text(label_text, exact=True)).to_be_visible()
    expect(first.get_by_role("link", name="Ver detalles")).to_be_in_viewport(ratio=1)
    context.close()
