"""The SMS body template language (no database)."""

import sys
from pathlib import Path

# Make the project importable when pytest-django (which would add it) is off.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from messaging.templating import (
    STANDARD_VARIABLES,
    TemplateError,
    _compile,
    render,
    validate,
    variables_in,
)

# --- render ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "context", "expected"),
    [
        ("", {}, ""),
        ("No tags at all.", {}, "No tags at all."),
        ("Hi {{ first_name }}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{first_name}}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{   first_name\t}}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("{{a}}{{b}}", {"a": 1, "b": 2}, "12"),
        ("Hi {{ first_name }}!", {}, "Hi !"),
        ("Hi {{ first_name }}!", {"first_name": None}, "Hi !"),
        ("Code {{ code }}", {"code": 4711}, "Code 4711"),
        ("Due {{ amount }}", {"amount": 9.5}, "Due 9.5"),
        ("Flag {{ flag }}", {"flag": False}, "Flag False"),
        ('Hi {{ first_name|default:"there" }}!', {}, "Hi there!"),
        ("Hi {{ first_name|default:'there' }}!", {}, "Hi there!"),
        ('Hi {{first_name|default:"there"}}!', {}, "Hi there!"),
        ('Hi {{ first_name | default : "there" }}!', {}, "Hi there!"),
        ('Hi {{ first_name|default:"there" }}!', {"first_name": "Ana"}, "Hi Ana!"),
        ('Hi {{ first_name|default:"there" }}!', {"first_name": None}, "Hi there!"),
        ('Hi {{ first_name|default:"there" }}!', {"first_name": ""}, "Hi there!"),
        ('Hi {{ first_name|default:"there" }}!', {"first_name": "  "}, "Hi there!"),
        ('Hi {{ first_name|default:"" }}!', {}, "Hi !"),
        ('{{ x|default:"it\'s {{ fine }}" }}', {}, "it's {{ fine }}"),
        ("{{ x|default:'say \"hi\"' }}", {}, 'say "hi"'),
        ('{{ x|default:"0" }}', {"x": 0}, "0"),
        ("{{ city|upper }}", {"city": "Paris"}, "PARIS"),
        ("{{ city|lower }}", {"city": "Paris"}, "paris"),
        ("{{ city|title }}", {"city": "new york"}, "New York"),
        ("{{ city|capfirst }}", {"city": "new york"}, "New york"),
        ('{{ city|upper|default:"nowhere" }}', {}, "nowhere"),
        ('{{ city|default:"nowhere"|upper }}', {}, "NOWHERE"),
        ('{{ city | default:"nowhere" | upper }}', {"city": "rome"}, "ROME"),
        # Unicode values and templates pass through untouched.
        ("Hallo {{ name }} \U0001f44b", {"name": "J\u00fcrgen"}, "Hallo J\u00fcrgen \U0001f44b"),
        ("{{ name }}", {"name": "\u5f20\u4f1f"}, "\u5f20\u4f1f"),
        ('{{ name|default:"\u00e7a va" }}', {}, "\u00e7a va"),
        ("{{ name|upper }}", {"name": "stra\u00dfe"}, "STRASSE"),
        # No HTML escaping: this is SMS.
        ("{{ q }}", {"q": "<b>Tom & Jerry's</b>"}, "<b>Tom & Jerry's</b>"),
        # Rendering is not recursive: a value that looks like a tag stays text.
        ("{{ a }}", {"a": "{{ b }}", "b": "no"}, "{{ b }}"),
        # Text outside tags is literal, including single braces and a lone "}}".
        ("{x} {a} }} {", {"a": "A"}, "{x} {a} }} {"),
        ("line1\n{{ a }}\r\nline3", {"a": "A"}, "line1\nA\r\nline3"),
        ("{{ _private }} {{ v2 }}", {"_private": "p", "v2": "two"}, "p two"),
    ],
)
def test_render(template, context, expected):
    assert render(template, context) == expected


def test_render_uses_only_mapping_lookup():
    class Attrs(dict):
        def __missing__(self, key):  # dict.get does not call this
            raise AssertionError("should not be called")

    assert render("{{ a }}{{ b }}", Attrs(a="x")) == "x"


def test_render_calls_str_on_values():
    class Value:
        def __str__(self):
            return "custom"

    assert render("{{ v }}", {"v": Value()}) == "custom"


def test_render_raises_on_malformed_template():
    with pytest.raises(TemplateError):
        render("Hi {{ name", {"name": "x"})


def test_compiled_templates_are_cached():
    _compile.cache_clear()
    template = "Hi {{ first_name }}, {{ x|default:'y' }}"
    for i in range(50):
        render(template, {"first_name": str(i)})
    info = _compile.cache_info()
    assert info.misses == 1
    assert info.hits == 49


# --- variables_in ------------------------------------------------------------


def test_variables_in():
    template = 'Hi {{ first_name }} {{ last_name|default:"" }}, {{ first_name|upper }} {{city}}'
    assert variables_in(template) == {"first_name", "last_name", "city"}
    assert variables_in("no variables") == set()


def test_variables_in_raises_on_malformed_template():
    with pytest.raises(TemplateError):
        variables_in("{{ a }} {{ b")


# --- validate ----------------------------------------------------------------


def test_validate_accepts_known_and_standard_variables():
    validate("Hi {{ first_name }} {{ last_name }} {{ name }} {{ phone }}", known=set())
    validate("Your plan: {{ plan }}", known={"plan"})
    validate("plain text", known=set())
    assert {"first_name", "last_name", "name", "phone"} == STANDARD_VARIABLES


def test_validate_allows_unknown_variable_with_default():
    validate('Hi {{ nickname|default:"friend" }}', known=set())
    validate("Hi {{ nickname|upper|default:'friend' }}", known=set())


def test_validate_unknown_variable():
    with pytest.raises(TemplateError) as excinfo:
        validate("Hi {{ first_name }}, your plan is {{ plan }}.", known={"city"})
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert '"plan"' in str(error)
    assert "line 1, column 35" in str(error)
    assert error.variables == ("plan",)
    assert error.position == 34


def test_validate_reports_all_unknown_variables_once():
    with pytest.raises(TemplateError) as excinfo:
        validate("{{ a }} {{ b }}\n{{ a }} {{ c }}", known={"c"})
    assert excinfo.value.variables == ("a", "b")
    message = str(excinfo.value)
    assert '"a" (at line 1, column 1)' in message
    assert '"b" (at line 1, column 9)' in message
    assert "Unknown variables" in message


def test_validate_unknown_variable_is_still_unknown_without_default_elsewhere():
    # One use has a default, another does not: the one without is an error.
    with pytest.raises(TemplateError) as excinfo:
        validate('{{ plan|default:"basic" }} and {{ plan }}', known=set())
    assert "line 1, column 32" in str(excinfo.value)


@pytest.mark.parametrize(
    ("template", "fragments", "position"),
    [
        ("Hi {{ name", ['Unclosed "{{"', "line 1, column 4"], 3),
        ("Hi {{ name }", ['Unclosed "{{"'], 3),
        ("Hi {{ name }} and {{ other", ['Unclosed "{{"', "column 19"], 18),
        ("a\nb\n  {{ x", ['Unclosed "{{"', "line 3, column 3"], 6),
        ("{{ a {{ b }}", ['Unclosed "{{"', "column 1"], 0),
        ("Hi {{ }}", ["Empty variable name"], 3),
        ("Hi {{}}", ["Empty variable name"], 3),
        ('Hi {{ |default:"x" }}', ["Empty variable name"], 3),
        ("Hi {{ first-name }}", ['Invalid variable name "first-name"'], 6),
        ("Hi {{ 1st }}", ['Invalid variable name "1st"'], 6),
        ("Hi {{ user.name }}", ['Invalid variable name "user.name"'], 6),
        ("Hi {{ n\u00e4me }}", ['Invalid variable name "n\u00e4me"'], 6),
        ("Hi {{ first name }}", ["Unexpected character 'n'", '"first"'], 12),
        ('Hi {{ "name" }}', ["Unexpected character"], 6),
        ("Hi {{ name|shout }}", ['Unknown filter "shout"', '"name"', "available"], 11),
        ("Hi {{ name|safe }}", ['Unknown filter "safe"'], 11),
        ("Hi {{ name| }}", ["Missing filter name"], 12),
        ("Hi {{ name|default }}", ['Filter "default"', "needs an argument"], 11),
        ("Hi {{ name|default: }}", ["quotes"], 20),
        ("Hi {{ name|default:there }}", ["quotes"], 19),
        ('Hi {{ name|default:"there }}', ["Unterminated string"], 19),
        ("Hi {{ name|default:'there\" }}", ["Unterminated string"], 19),
        ('Hi {{ name|upper:"x" }}', ['Filter "upper" does not take an argument'], 16),
        ('Hi {{ name|default:"a" "b" }}', ["Unexpected character"], 23),
    ],
)
def test_malformed_templates(template, fragments, position):
    with pytest.raises(TemplateError) as excinfo:
        validate(template, known={"name", "first", "a", "b", "x"})
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message
    assert excinfo.value.position == position
    assert isinstance(excinfo.value, ValueError)
