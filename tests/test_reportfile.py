"""Generated reports: the provenance header explains a difference, only the body is compared."""

from __future__ import annotations

from chat_template_harness.outputs import reportfile


def test_a_report_round_trips_its_header_and_body():
    text = reportfile.with_header("## title\n\nbody line\n", {"generated-by": "cth x", "transformers": "5.24.0"})
    assert text.startswith("<!-- chat-template-harness report\n")
    fields, body = reportfile.split(text)
    assert fields == {"generated-by": "cth x", "transformers": "5.24.0"}
    assert body == "## title\n\nbody line\n"


def test_a_library_version_changes_the_header_never_the_body():
    old = reportfile.with_header("same verdict", {"transformers": "5.23.0"})
    new = reportfile.with_header("same verdict", {"transformers": "5.24.0"})
    assert old != new
    assert reportfile.body(old) == reportfile.body(new)
    assert reportfile.header_changes(old, new) == ["transformers: 5.23.0 -> 5.24.0"]


def test_a_changed_body_is_a_difference():
    """Negative control: the body comparison is not blind."""
    old = reportfile.with_header("pass", {"transformers": "5.23.0"})
    new = reportfile.with_header("FAIL", {"transformers": "5.23.0"})
    assert reportfile.body(old) != reportfile.body(new)


def test_a_file_without_a_header_is_all_body():
    assert reportfile.split("## plain\n") == ({}, "## plain\n")


def test_versions_name_the_template_stack():
    found = reportfile.versions()
    assert {"chat-template-harness", "transformers", "tokenizers", "jinja2"} <= set(found)
