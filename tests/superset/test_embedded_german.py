"""Ready-made dashboards as a clerk sees them in the portal: German, readable, accessible.

Real Superset, real portal, Debian's Chromium with axe-core (WCAG 2.1 AA) run inside the embedded
document. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import text

from tests.superset.conftest import ARTIFACTS, add_user, create_tenant_with_data
from tests.superset.test_embedding import session_cookie

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: Dataset columns that hold a vocabulary code in the analytics tables.
CODED = ("payment_method", "payment_provider", "auth_method", "trust_level", "channel")


def _vocabulary_labels() -> set[str]:
    from tenants.vocabulary import VOCABULARIES

    return {label for labels in VOCABULARIES.values() for label in labels.values()}


@pytest.fixture(scope="module")
def viewer_a(ss_app, tenants_ab) -> str:
    return add_user(ss_app, tenants_ab.a, "viewer", subject="viewer-embedded-german")


def _open(browser, app, live_url: str, tenant, identity: str, key: str, lang: str = "de", datasets: list | None = None):
    """The portal's dashboard page with the embedded dashboard loaded; returns (context, page, frame, chart data).
    ``datasets`` collects the dashboard's datasets as Superset's API sent them to the page."""
    context = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 900})
    context.add_cookies([session_cookie(app, identity)])
    page = context.new_page()
    chart_data: list[dict] = []

    def record(response):
        if "/api/v1/chart/data" in response.url and response.request.method == "POST" and response.ok:
            chart_data.append({**response.json(), "_request": response.request.post_data_json})
        elif datasets is not None and re.search(r"/api/v1/dashboard/[^/]+/datasets", response.url) and response.ok:
            datasets.extend(response.json()["result"])

    page.on("response", record)
    page.goto(f"{live_url}/t/{tenant.ags}/dashboards/{key}?lang={lang}")
    page.frame_locator("#superset-dashboard iframe").locator(".dashboard-component-chart-holder").first.wait_for(
        timeout=60_000)
    frame = next(f for f in page.frames if "/embedded/" in f.url)
    # Every chart has drawn: no loading indicator left, then a moment for animations.
    for _ in range(60):
        if frame.locator(".loading, [data-test='loading-indicator']").count() == 0 and chart_data:
            break
        page.wait_for_timeout(1000)
    page.wait_for_timeout(2500)
    return context, page, frame, chart_data


def _axe(frame) -> list[dict]:
    frame.evaluate(AXE.read_text(encoding="utf-8"))
    result = frame.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    return [{"id": v["id"], "nodes": [{"target": n["target"], "html": n["html"][:300],
                                       "summary": n["failureSummary"][:300]} for n in v["nodes"]]}
            for v in result["violations"]]


def _reached_by_tab(page, frame, stops: int = 80) -> set[str]:
    """The chart holders the keyboard focus entered while tabbing through the page."""
    reached = set()
    page.locator("body").click(position={"x": 5, "y": 5})
    for _ in range(stops):
        page.keyboard.press("Tab")
        holder = frame.evaluate("""() => {
            const el = document.activeElement && document.activeElement.closest('.dashboard-component-chart-holder');
            return el ? (el.getAttribute('aria-label') || el.id || el.outerHTML.slice(0, 80)) : null;
        }""")
        if holder:
            reached.add(holder)
    return reached


@pytest.mark.parametrize("key", ["overview", "service_detail", "payment", "authentication", "channels", "feedback",
                                 "web_analytics", "benchmark"])
def test_embedded_dashboard_is_german_accessible_by_keyboard_and_sized_to_its_content(
        ss_app, ss_live_server, tenants_ab, viewer_a, browser, key):
    from tenants.superset import templates

    a = tenants_ab.a
    template = templates.dashboards()[key]
    context, page, frame, chart_data = _open(browser, ss_app, ss_live_server.url, a, viewer_a, key)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"embedded_german_{key}.png"), full_page=True)
        iframe = page.locator("#superset-dashboard iframe")
        assert iframe.get_attribute("title") == f"Dashboard „{template['title']}“"
        assert frame.evaluate("document.documentElement.lang") == "de"

        violations = _axe(frame)
        (ARTIFACTS / f"embedded_german_{key}_axe.json").write_text(json.dumps(violations, indent=1))
        assert violations == [], violations

        # Figures a clerk reads as text: German thousands separators, no English short form (16.2k).
        shown = frame.locator(".header-line, table td").all_inner_texts()
        assert shown or not {"big_number_total", "table"} & {c["viz_type"] for c in template["charts"]}
        assert not [s for s in shown if re.search(r"\d(\.\d+)?[kKMB]\b", s)], shown
        assert "N/A" not in shown  # an empty cell in German (the table chart writes it in English itself)
        placeholders = frame.evaluate("Array.from(document.querySelectorAll('input[placeholder]'), i => i.placeholder)")
        assert not [p for p in placeholders if "record" in p], placeholders
        big = [s.strip() for s in frame.locator(".header-line").all_inner_texts()]
        assert all(re.fullmatch(r"-?\d{1,3}(\.\d{3})*(,\d+)?( ?%)?", s) for s in big), big

        # Codes arrive as German labels.
        labels = _vocabulary_labels()
        coded = {row[col] for body in chart_data for result in body["result"] for row in result["data"]
                 for col in CODED if col in row}
        assert coded <= labels, coded - labels

        if key == "service_detail":  # one service, chosen for the clerk, never all services' steps mixed
            chosen = [f["val"] for body in chart_data for query in body["_request"]["queries"]
                      for f in query.get("filters", []) if f["col"] == "service"]
            assert len(chosen) >= len(template["charts"]), [body["_request"] for body in chart_data]
            assert {tuple(v) for v in chosen} == {tuple(chosen[0])} and len(chosen[0]) == 1, chosen

        # One scroll bar: the iframe is as tall as the dashboard, the dashboard does not scroll inside.
        inner = frame.evaluate("[document.documentElement.scrollHeight, document.documentElement.clientHeight]")
        assert inner[0] <= inner[1] + 2, inner
        lowest = frame.evaluate("""() => Math.max(...Array.from(document.querySelectorAll(
            '.dashboard-component-chart-holder')).map(e => e.getBoundingClientRect().bottom))""")
        height = iframe.bounding_box()["height"]
        assert lowest <= height < lowest + 120, (lowest, height)  # no chart cut off, no empty space below

        # Every chart is a keyboard stop, named after its title.
        reached = _reached_by_tab(page, frame)
        names = {chart["name"] for chart in template["charts"]}
        assert names <= reached, (names - reached, reached)

        # A chart's filter badge lists the filters applied, in German (Superset writes "No filter" itself).
        badges = frame.locator("[aria-label^='Angewandte Filter']")
        assert badges.count() or key != "overview"
        if badges.count():
            popover = frame.locator(".ant-popover:not(.ant-popover-hidden)").first
            for _attempt in range(3):  # a click while the chart still settles may not open it
                badges.first.click()
                try:
                    popover.wait_for(timeout=5_000)
                    break
                except PlaywrightTimeoutError:
                    continue
            listed = popover.inner_text()
            assert "No filter" not in listed and ("Kein Filter" in listed or key != "overview"), listed
    finally:
        context.close()


def _template_texts() -> list[str]:
    """Every text of the ready-made dashboards a user reads, as the templates write it (German)."""
    from superset_config import portal_ui
    from tenants.superset import templates

    texts = []
    for template in templates.dashboards().values():
        texts += [template["title"], template.get("description", ""), template.get("intro", "")]
        texts += [spec["name"] for spec in template.get("filters", [])]
        texts += [chart["name"] for chart in template["charts"]]
    texts += [label for name in templates.datasets() for label in templates.dataset_column_labels(name).values()]
    texts += [spec.get("description", "") for spec in templates.datasets().values()]
    texts += [spec["name"] for spec in templates.datasets().values()] + list(templates.metric_labels().values())
    texts.append(portal_ui.OWN_DATA)  # the tenant's database as editors see it
    return [text for text in dict.fromkeys(texts) if text]


def test_every_template_text_has_an_english_text():
    catalogue = json.loads((ROOT / "superset_config/translations/dashboards.en.json").read_text(encoding="utf-8"))
    texts = _template_texts()
    assert [text for text in texts if not catalogue.get(text)] == []
    assert sorted(set(catalogue) - set(texts) - {"_comment"}) == []  # no entry left from a renamed text


_TITLES = """() => Array.from(document.querySelectorAll('.dashboard-component-chart-holder'))
        .map(h => h.querySelector("[data-test='editable-title'], .header-title, .chart-header .title"))
        .filter(t => t && t.textContent.trim()).map(t => t.textContent.trim())"""


def _chart_titles(frame, expected: int) -> set[str]:
    """The titles shown above the charts, once ``expected`` of them are drawn (a chart holder gets its
    header after its chart's answer arrived; on a busy machine that may be seconds after the first one)."""
    try:
        frame.wait_for_function(f"() => ({_TITLES})().length >= {expected}", timeout=30_000)
    except PlaywrightTimeoutError:
        pass  # the comparison below shows what was drawn
    return set(frame.evaluate(_TITLES))


@pytest.mark.parametrize("key", ["overview", "service_detail"])
def test_english_mode_shows_the_embedded_dashboard_in_english(ss_app, ss_live_server, tenants_ab, viewer_a,
                                                              browser, key):
    from tenants.superset import templates

    english = json.loads((ROOT / "superset_config/translations/dashboards.en.json").read_text(encoding="utf-8"))
    template = templates.dashboards()[key]
    datasets = []
    context, page, frame, _ = _open(browser, ss_app, ss_live_server.url, tenants_ab.a, viewer_a, key, lang="en",
                                    datasets=datasets)
    try:
        page.screenshot(path=str(ARTIFACTS / f"embedded_english_{key}.png"), full_page=True)
        assert frame.evaluate("document.documentElement.lang") == "en"
        body = frame.locator("body").inner_text()
        assert "Apply filters" in body and "Filter anwenden" not in body
        # The template's own texts: the page around it, chart titles, filter names, the intro.
        title = english[template["title"]]
        assert page.locator("#superset-dashboard iframe").get_attribute("title") == f"Dashboard “{title}”"
        assert page.locator("h2").first.inner_text() == title
        shown = _chart_titles(frame, len(template["charts"]))
        assert shown == {english[chart["name"]] for chart in template["charts"]}, shown
        filters = frame.locator("[data-test='filter-bar']").inner_text()
        assert all(english[spec["name"]] in filters and spec["name"] not in filters
                   for spec in template["filters"]), filters
        if template.get("intro"):
            assert "Please choose the service" in body and "Bitte wählen Sie" not in body
        # English figures too: 16,200 and 68.4%, not 16.200 and 68,4%.
        big = [s.strip() for s in frame.locator(".header-line").all_inner_texts()]
        assert all(re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?%?", s) for s in big), big
        assert not big or any(re.search(r"\.\d%", s) for s in big), big  # a rate shows the English decimal point
        # The datasets' names too (German in Superset; "Dienste je Tag" is "Services per day").
        names = {templates.datasets()[c["dataset"]]["name"] for c in template["charts"]}
        assert datasets and {d["table_name"] for d in datasets} == {english[name] for name in names}
    finally:
        context.close()

    # The same viewer back in German mode: the German titles again.
    context, page, frame, _ = _open(browser, ss_app, ss_live_server.url, tenants_ab.a, viewer_a, key)
    try:
        shown = _chart_titles(frame, len(template["charts"]))
        assert shown == {chart["name"] for chart in template["charts"]}, shown
    finally:
        context.close()


def test_superset_serves_corrected_german_strings(superset):
    """The override catalogue reaches Superset's frontend; each corrected msgid is one Superset has."""
    wheel = ROOT / ".venv-superset"
    packs = list(wheel.glob("lib/python3*/site-packages/superset/translations/de/LC_MESSAGES/messages.json"))
    original = json.loads(packs[0].read_text(encoding="utf-8"))["locale_data"]["superset"]
    overrides = {k: v for k, v in json.loads((ROOT / "superset_config/translations/de.json").read_text(
        encoding="utf-8")).items() if not k.startswith("_")}
    assert original["Last queried at"] == ["Letztes Quartal"]  # the mistake being corrected is Superset's

    served = requests.get(f"{superset}/superset/language_pack/de/", timeout=10)
    assert served.status_code == 200
    messages = served.json()["locale_data"]["superset"]
    assert messages["Last queried at"] == ["Zuletzt abgefragt am"]
    assert "".join(messages[k][0] for k in ("Select", " a dashboard OR ", "create", " a new one")) == \
        "Auswählen: ein vorhandenes Dashboard – oder Erstellen: ein neues Dashboard"
    # An override's msgid is one Superset has; or, missing from its catalogue, one its frontend asks for.
    frontend = "".join(path.read_text(encoding="utf-8", errors="ignore") for path in
                       wheel.glob("lib/python3*/site-packages/superset/static/assets/*.js"))
    assert sorted(k for k in set(overrides) - set(original) if f'.t)("{k}")' not in frontend) == []
    assert all(messages[k] == (v if isinstance(v, list) else [v]) for k, v in overrides.items())
    # A plural: Superset's own is "%s Fehler" (errors) and "%s records..." for the table search's count.
    assert original["%s record"] == ["%s Fehler", "%s records..."]
    assert messages["%s record"] == ["%s Eintrag …", "%s Einträge …"]
    assert messages["Dashboards"] == original["Dashboards"]  # the rest is Superset's own


def test_language_pack_is_kept_by_the_browser(superset):
    """Superset's frontend asks for the pack (100 kB) on every page before drawing anything: the browser may
    keep it for a day whatever the session cookie says, and asks again cheaply (304) after that."""
    url = f"{superset}/superset/language_pack/de/"
    served = requests.get(url, headers={"Accept-Encoding": "br, gzip"}, cookies={"session": "any"}, timeout=10)
    assert served.status_code == 200 and served.headers["Content-Encoding"] == "br"
    assert "max-age=86400" in served.headers["Cache-Control"]
    assert "cookie" not in served.headers["Vary"].lower()  # the embedded page rewrites the cookie on every visit
    gzip = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert gzip.headers["Content-Encoding"] == "gzip" and len(gzip.content) > 4 * len(served.content) // 3
    assert gzip.json()["locale_data"]["superset"]["Last queried at"] == ["Zuletzt abgefragt am"]
    again = requests.get(url, headers={"If-None-Match": served.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""


@pytest.fixture
def daily_counts_only(ss_app, owner_engine, tenants_ab):
    """A tenant whose sources deliver daily counts only, with tenant a's dashboards recorded as its own
    (the page, not Superset, is under test here)."""
    from tenants.superset.provision import _save_state, load_state

    tenant = create_tenant_with_data(ss_app, "06533009", scale=1, days=10)
    with owner_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant.id)})
        conn.execute(text("DELETE FROM analytics.rollup_step_daily WHERE tenant_id = :t"), {"t": tenant.id})
    with ss_app.app_context():
        _save_state(tenant.id, {"dashboards": load_state(tenants_ab.a.id)["dashboards"]})
    yield tenant
    from tenants.archive import purge

    with owner_engine.begin() as conn:  # no Superset objects of its own to remove
        purge(conn, tenant.id)
        conn.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        conn.execute(text("DELETE FROM portal.tenants WHERE id = :t"), {"t": tenant.id})


def test_service_detail_says_why_a_tenant_with_daily_counts_has_no_funnel(ss_app, tenants_ab, viewer_a,
                                                                          daily_counts_only):
    from tests.conftest import sign_in

    client = ss_app.test_client()
    sign_in(client, add_user(ss_app, daily_counts_only, "viewer"))
    page = client.get(f"/t/{daily_counts_only.ags}/dashboards/service_detail").get_data(as_text=True)
    assert 'id="no-step-data"' in page and "nur Tageszahlen" in page
    assert 'id="no-step-data"' not in client.get(f"/t/{daily_counts_only.ags}/dashboards/overview").get_data(
        as_text=True)

    with_steps = ss_app.test_client()
    sign_in(with_steps, viewer_a)
    assert 'id="no-step-data"' not in with_steps.get(f"/t/{tenants_ab.a.ags}/dashboards/service_detail").get_data(
        as_text=True)


def test_no_unreviewed_german_guess_reaches_the_frontend(superset):
    """Superset's German catalogue holds about 700 "fuzzy" entries: msgmerge's guesses from similar strings that
    nobody reviewed ("Sign in" -> "Nicht in" on the sign-in page, "10 seconds" -> "30 Sekunden", "More Options"
    -> "Heatmap-Optionen" on every chart's menu), which its pack serves as translations. Each is served in our
    reviewed wording, with the msgid's placeholders, or not at all; and every override keeps its placeholders."""
    from babel.messages.pofile import read_po

    po = next((ROOT / ".venv-superset").glob("lib/python3*/site-packages/superset/translations/de/LC_MESSAGES/"
                                              "messages.po"))
    with po.open("rb") as catalogue:
        fuzzy = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(catalogue) if m.id and m.fuzzy}
    overrides = {k: v for k, v in json.loads((ROOT / "superset_config/translations/de.json").read_text(
        encoding="utf-8")).items() if not k.startswith("_")}
    messages = requests.get(f"{superset}/superset/language_pack/de/", timeout=10).json()["locale_data"]["superset"]
    assert len(fuzzy) > 500
    assert messages["Sign in"] == ["Anmelden"] and messages["10 seconds"] == ["10 Sekunden"]
    assert messages["More Options"] == ["Weitere Optionen"]
    assert sorted(m for m in fuzzy if m in messages and m not in overrides) == []
    placeholders = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_]*\}")
    wrong = [msgid for msgid, text in overrides.items() for form in (text if isinstance(text, list) else [text])
             if sorted(placeholders.findall(form)) != sorted(placeholders.findall(msgid))]
    assert wrong == []


def test_a_charts_menu_in_an_embedded_dashboard_offers_no_table_view_it_cannot_draw(ss_app, ss_live_server,
                                                                                    tenants_ab, viewer_a, browser):
    """A walk-through opened "Als Tabelle anzeigen" in an embedded dashboard and got an empty window ("AG Grid:
    error #272 No AG Grid modules are registered"): Superset 6.1's embedded page does not register the table
    component this view draws with. The menu no longer offers it; the other entries stay."""
    context, page, frame, _ = _open(browser, ss_app, ss_live_server.url, tenants_ab.a, viewer_a, "overview")
    try:
        holder = frame.locator(".dashboard-component-chart-holder").filter(has_text="Entwicklung je Monat").first
        holder.hover()
        holder.locator("[data-test='slice-header'] [aria-label], .header-controls button, [role='button']").last.click()
        frame.locator(".ant-dropdown-menu, [role='menu']").first.wait_for(timeout=15_000)
        entries = frame.locator("[role='menuitem']").all_inner_texts()
        page.screenshot(path=str(ARTIFACTS / "embedded_chart_menu.png"))
    finally:
        context.close()
    assert "Vollbild öffnen" in entries and "Herunterladen" in entries, entries
    assert not any("Tabelle" in entry for entry in entries), entries


def test_chart_titles_are_whole_on_a_laptop_screen(ss_app, ss_live_server, tenants_ab, viewer_a, browser):
    """At 1366 px (a common office laptop) the Übersicht's number cards showed "Abschlussquot" (a walk-through):
    every chart title is shown whole."""
    context, page, frame, _ = _open(browser, ss_app, ss_live_server.url, tenants_ab.a, viewer_a, "overview")
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        page.wait_for_timeout(2500)
        cut = frame.evaluate("""() => [...document.querySelectorAll('.dashboard-component-chart-holder')]
            .flatMap(h => [...h.querySelectorAll('[data-test="editable-title"], .header-title')])
            .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
            .map(e => e.textContent.trim())""")
        page.screenshot(path=str(ARTIFACTS / "embedded_overview_1366.png"), full_page=True)
    finally:
        context.close()
    assert cut == [], cut
