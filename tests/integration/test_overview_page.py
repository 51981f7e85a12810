"""The overview page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
selenium): it loads without console errors, a header click sorts, the filters filter, a job ID opens
its report. The registry is real files written as submit, the jobs and sync write them (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from orchestrator.core import index
from orchestrator.present import overview
from tests.helpers import HOSTILE, make_registry

pytestmark = pytest.mark.slow
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def labels(driver: Any) -> list[str]:
    """The config cells of the rows shown, top to bottom."""
    return [row.find_element("css selector", "td").text
            for row in driver.find_elements("css selector", "tbody tr") if row.is_displayed()]


def set_value(driver: Any, control: str, value: str) -> None:
    """Set a filter control as typing or picking a date does (an ``input`` event)."""
    driver.execute_script("const c = document.querySelector(`[data-filter='${arguments[0]}']`); c.value = arguments[1];"
                          " c.dispatchEvent(new Event('input'));", control, value)


def test_the_overview_sorts_filters_and_links_in_headless_chromium(tmp_path: Path,
                                                                    browser: Callable[[], Any]) -> None:
    driver = browser()
    root = tmp_path / "registry"
    make_registry(root)
    page = overview.refresh(root, index.load(root))  # as orch sync writes it
    driver.set_window_size(1400, 600)
    driver.get(page.as_uri())
    hostile = f"{HOSTILE}_v1"
    assert labels(driver) == [hostile, "gamma_v1", "beta_v2", "alpha_v1", "?"]  # newest first
    assert driver.find_element("id", "shown").text == "5 of 5 shown"
    assert driver.execute_script("return document.querySelectorAll('tbody script').length") == 0  # a name is text

    header = {th.text: th for th in driver.find_elements("css selector", "th")}
    header["wall time"].click()
    assert labels(driver)[2:] == ["gamma_v1", "alpha_v1", "beta_v2"]  # 8 min, 10 min, 20 min after the unknown
    header["wall time"].click()
    assert labels(driver)[:3] == ["beta_v2", "alpha_v1", "gamma_v1"]
    header["submitted"].click()
    assert labels(driver) == ["?", "alpha_v1", "beta_v2", "gamma_v1", hostile]

    driver.find_element("css selector", "select[data-filter='state'] option[value='']")  # "any" is there
    driver.find_element("xpath", "//select[@data-filter='state']/option[text()='COMPLETED']").click()
    assert labels(driver) == ["alpha_v1", "beta_v2", "gamma_v1"]
    assert driver.find_element("id", "shown").text == "3 of 5 shown"
    driver.find_element("xpath", "//select[@data-filter='state']/option[@value='']").click()
    driver.find_element("css selector", "input[data-filter='name']").send_keys("GAM")
    assert labels(driver) == ["gamma_v1"]
    driver.find_element("css selector", "input[data-filter='name']").clear()
    set_value(driver, "name", "")
    set_value(driver, "from", "2026-02-01")
    set_value(driver, "to", "2026-03-01")
    assert labels(driver) == ["beta_v2", "gamma_v1"]  # the to-day itself is in
    set_value(driver, "to", "")
    assert labels(driver) == ["beta_v2", "gamma_v1", hostile]
    set_value(driver, "from", "")
    assert len(labels(driver)) == 5

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    OUTPUT.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(OUTPUT / "overview.png"))  # kept as a CI artifact
    driver.find_element("link text", "100").click()  # the relative link reaches the report beside the artifacts
    assert driver.title == "report of 100"
